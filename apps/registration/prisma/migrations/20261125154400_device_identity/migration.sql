-- DropIndex
DROP INDEX "devices_tenant_id_idx";

-- AlterTable
ALTER TABLE "devices" ADD COLUMN     "certificate_not_after" TIMESTAMPTZ(3),
ADD COLUMN     "certificate_pem" TEXT,
ADD COLUMN     "certificate_serial" TEXT,
ADD COLUMN     "device_key_spki" BYTEA,
ADD COLUMN     "device_key_thumbprint" TEXT,
ADD COLUMN     "enrolled_by" TEXT,
ADD COLUMN     "enrollment" TEXT,
ADD COLUMN     "join_token_id" UUID,
ADD COLUMN     "last_seen_at" TIMESTAMPTZ(3),
ADD COLUMN     "transport_key_thumbprint" TEXT;

-- CreateTable
CREATE TABLE "tenants" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "display_name" TEXT NOT NULL,
    "require_tpm" BOOLEAN NOT NULL DEFAULT false,
    "certificate_validity_days" INTEGER NOT NULL DEFAULT 365,
    "tpm_roots_pem" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "tenants_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "tenant_cas" (
    "tenant_id" UUID NOT NULL,
    "certificate_pem" TEXT NOT NULL,
    "parent_chain_pem" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "encrypted_private_key" TEXT NOT NULL,
    "crl_number" BIGINT NOT NULL DEFAULT 1,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "tenant_cas_pkey" PRIMARY KEY ("tenant_id")
);

-- CreateTable
CREATE TABLE "join_tokens" (
    "id" UUID NOT NULL,
    "tenant_id" UUID NOT NULL,
    "token_hash" BYTEA NOT NULL,
    "hint" TEXT NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "max_uses" INTEGER NOT NULL,
    "use_count" INTEGER NOT NULL DEFAULT 0,
    "device_name_prefix" TEXT,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "revoked_at" TIMESTAMPTZ(3),
    "created_by" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "join_tokens_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "device_certificates" (
    "serial" TEXT NOT NULL,
    "tenant_id" UUID NOT NULL,
    "device_id" UUID NOT NULL,
    "not_before" TIMESTAMPTZ(3) NOT NULL,
    "not_after" TIMESTAMPTZ(3) NOT NULL,
    "revoked_at" TIMESTAMPTZ(3),
    "revocation_reason" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "device_certificates_pkey" PRIMARY KEY ("serial")
);

-- CreateIndex
CREATE UNIQUE INDEX "join_tokens_token_hash_key" ON "join_tokens"("token_hash");

-- CreateIndex
CREATE INDEX "join_tokens_tenant_id_created_at_id_idx" ON "join_tokens"("tenant_id", "created_at" DESC, "id");

-- CreateIndex
CREATE INDEX "device_certificates_tenant_id_revoked_at_idx" ON "device_certificates"("tenant_id", "revoked_at");

-- CreateIndex
CREATE INDEX "device_certificates_device_id_idx" ON "device_certificates"("device_id");

-- CreateIndex
CREATE INDEX "devices_tenant_id_created_at_id_idx" ON "devices"("tenant_id", "created_at", "id");

-- AddForeignKey
ALTER TABLE "tenant_cas" ADD CONSTRAINT "tenant_cas_tenant_id_fkey" FOREIGN KEY ("tenant_id") REFERENCES "tenants"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
