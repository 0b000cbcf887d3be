-- CreateEnum
CREATE TYPE "CredentialStatus" AS ENUM ('active', 'suspended', 'revoked');

-- CreateEnum
CREATE TYPE "AttestationLevel" AS ENUM ('software', 'tpm');

-- CreateTable
CREATE TABLE "key_policies" (
    "tenant_id" UUID NOT NULL,
    "require_tpm" BOOLEAN NOT NULL,
    "allowed_algorithms" TEXT[],
    "mfa_freshness_seconds" INTEGER NOT NULL,
    "max_keys_per_user" INTEGER NOT NULL,
    "max_keys_per_device" INTEGER NOT NULL,
    "max_keys_per_user_device" INTEGER NOT NULL,
    "key_lifetime_seconds" INTEGER NOT NULL,
    "updated_by" TEXT NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "key_policies_pkey" PRIMARY KEY ("tenant_id")
);

-- CreateTable
CREATE TABLE "credentials" (
    "id" TEXT NOT NULL,
    "tenant_id" UUID NOT NULL,
    "user_id" TEXT NOT NULL,
    "device_id" UUID NOT NULL,
    "public_key_jwk" JSONB NOT NULL,
    "algorithm" TEXT NOT NULL,
    "attestation_level" "AttestationLevel" NOT NULL,
    "attestation_issuer" TEXT,
    "status" "CredentialStatus" NOT NULL DEFAULT 'active',
    "suspended_for_device" BOOLEAN NOT NULL DEFAULT false,
    "suspended_for_user" BOOLEAN NOT NULL DEFAULT false,
    "status_reason" TEXT,
    "friendly_name" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_used_at" TIMESTAMPTZ(3),
    "expires_at" TIMESTAMPTZ(3),
    "revoked_at" TIMESTAMPTZ(3),
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "credentials_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "processed_events" (
    "event_id" UUID NOT NULL,
    "type" TEXT NOT NULL,
    "processed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "processed_events_pkey" PRIMARY KEY ("event_id")
);

-- CreateIndex
CREATE INDEX "credentials_tenant_id_user_id_status_idx" ON "credentials"("tenant_id", "user_id", "status");

-- CreateIndex
CREATE INDEX "credentials_tenant_id_device_id_status_idx" ON "credentials"("tenant_id", "device_id", "status");

-- CreateIndex
CREATE INDEX "credentials_tenant_id_created_at_id_idx" ON "credentials"("tenant_id", "created_at" DESC, "id");
