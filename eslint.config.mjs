// ESLint flat config: typescript-eslint, Prettier compatibility and Nx module
// boundaries. Tags live in each project.json: scope:<service>|shared and
// type:app|lib|contracts|testing.
import js from '@eslint/js';
import nx from '@nx/eslint-plugin';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** Apps never import other apps; libs never import apps; contracts import nothing of ours. */
function boundaries({ tests }) {
  const testing = tests ? ['type:testing'] : [];
  const scope = (name) => ({
    sourceTag: `scope:${name}`,
    onlyDependOnLibsWithTags: [`scope:${name}`, 'scope:shared'],
  });
  return {
    enforceBuildableLibDependency: false,
    allow: [],
    depConstraints: [
      scope('registration'),
      scope('provisioning'),
      scope('auth'),
      scope('audit'),
      scope('agent'),
      { sourceTag: 'scope:shared', onlyDependOnLibsWithTags: ['scope:shared'] },
      {
        sourceTag: 'type:app',
        onlyDependOnLibsWithTags: ['type:lib', 'type:contracts', ...testing],
      },
      {
        sourceTag: 'type:lib',
        onlyDependOnLibsWithTags: ['type:lib', 'type:contracts', ...testing],
      },
      { sourceTag: 'type:testing', onlyDependOnLibsWithTags: ['type:lib', 'type:contracts'] },
      { sourceTag: 'type:contracts', onlyDependOnLibsWithTags: [] },
    ],
  };
}

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      'dist/**',
      'tmp/**',
      '.nx/**',
      '.stack/**',
      'libs/contracts/src/gen/**',
      'apps/*/src/generated/**',
      'deploy/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { '@nx': nx },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@nx/enforce-module-boundaries': ['error', boundaries({ tests: false })],
    },
  },
  {
    // Tests (and helpers inside e2e/ folders) may use the test helpers; production code may not.
    files: ['**/*.spec.ts', '**/*.e2e-spec.ts', 'apps/*/e2e/**/*.ts'],
    rules: { '@nx/enforce-module-boundaries': ['error', boundaries({ tests: true })] },
  },
  {
    // The Prisma CLI loads these with jiti, which knows no path aliases: they
    // import the one database-URL helper of service-kit by relative path.
    files: ['apps/*/prisma.config.ts'],
    rules: { '@nx/enforce-module-boundaries': 'off' },
  },
  {
    files: ['**/*.{js,cjs,mjs}'],
    languageOptions: { globals: { ...globals.node } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  prettier,
);
