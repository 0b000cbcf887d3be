-- CreateEnum
CREATE TYPE "session_status" AS ENUM ('active', 'revoked');

-- CreateTable
CREATE TABLE "key_sessions" (
    "id" UUID NOT NULL,
    "tenant_id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "device_id" UUID NOT NULL,
    "credential_id" TEXT NOT NULL,
    "attestation_level" TEXT NOT NULL,
    "token_hash" TEXT NOT NULL,
    "previous_token_hash" TEXT,
    "wrapped_session_key" TEXT NOT NULL,
    "status" "session_status" NOT NULL DEFAULT 'active',
    "revoke_reason" TEXT,
    "auth_time" TIMESTAMPTZ(3) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_used_at" TIMESTAMPTZ(3) NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "revoked_at" TIMESTAMPTZ(3),

    CONSTRAINT "key_sessions_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "key_sessions_token_hash_key" ON "key_sessions"("token_hash");

-- CreateIndex
CREATE UNIQUE INDEX "key_sessions_previous_token_hash_key" ON "key_sessions"("previous_token_hash");

-- CreateIndex
CREATE INDEX "key_sessions_tenant_id_user_id_status_idx" ON "key_sessions"("tenant_id", "user_id", "status");

-- CreateIndex
CREATE INDEX "key_sessions_tenant_id_device_id_status_idx" ON "key_sessions"("tenant_id", "device_id", "status");
