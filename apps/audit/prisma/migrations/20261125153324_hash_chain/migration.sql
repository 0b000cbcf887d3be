/*
  Warnings:

  - Added the required column `activity_id` to the `audit_records` table without a default value. This is not possible if the table is not empty.
  - Added the required column `class_uid` to the `audit_records` table without a default value. This is not possible if the table is not empty.
  - Added the required column `hash` to the `audit_records` table without a default value. This is not possible if the table is not empty.
  - Added the required column `prev_hash` to the `audit_records` table without a default value. This is not possible if the table is not empty.

*/
-- Records written before the hash chain existed (walking-skeleton builds only) cannot be
-- chained after the fact: remove them, with the append-only trigger lifted for this step.
ALTER TABLE "audit_records" DISABLE TRIGGER "audit_records_no_update_delete";
DELETE FROM "audit_records";
ALTER TABLE "audit_records" ENABLE TRIGGER "audit_records_no_update_delete";

-- AlterTable
ALTER TABLE "audit_records" ADD COLUMN     "activity_id" INTEGER NOT NULL,
ADD COLUMN     "class_uid" INTEGER NOT NULL,
ADD COLUMN     "credential_uid" TEXT,
ADD COLUMN     "device_uid" TEXT,
ADD COLUMN     "hash" TEXT NOT NULL,
ADD COLUMN     "prev_hash" TEXT NOT NULL,
ADD COLUMN     "reason" TEXT,
ADD COLUMN     "status_id" INTEGER,
ADD COLUMN     "user_uid" TEXT;

-- CreateTable
CREATE TABLE "audit_chain_heads" (
    "tenant_id" TEXT NOT NULL,
    "seq" BIGINT NOT NULL,
    "hash" TEXT NOT NULL,
    "checkpoint_seq" BIGINT NOT NULL DEFAULT 0,
    "checkpoint_at" TIMESTAMPTZ(3),
    "streamed_seq" BIGINT NOT NULL DEFAULT 0,
    "streamed_checkpoint_seq" BIGINT NOT NULL DEFAULT 0,
    "retained_from_seq" BIGINT NOT NULL DEFAULT 1,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "audit_chain_heads_pkey" PRIMARY KEY ("tenant_id")
);

-- CreateTable
CREATE TABLE "audit_checkpoints" (
    "id" BIGSERIAL NOT NULL,
    "tenant_id" TEXT NOT NULL,
    "seq" BIGINT NOT NULL,
    "hash" TEXT NOT NULL,
    "time" TIMESTAMPTZ(3) NOT NULL,
    "kid" TEXT NOT NULL,
    "signature" TEXT NOT NULL,

    CONSTRAINT "audit_checkpoints_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "audit_signing_keys" (
    "kid" TEXT NOT NULL,
    "algorithm" TEXT NOT NULL,
    "public_jwk" JSONB NOT NULL,
    "private_key_enc" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "retired_at" TIMESTAMPTZ(3),

    CONSTRAINT "audit_signing_keys_pkey" PRIMARY KEY ("kid")
);

-- CreateTable
CREATE TABLE "audit_retention_policies" (
    "tenant_id" TEXT NOT NULL,
    "retention_days" INTEGER NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "audit_retention_policies_pkey" PRIMARY KEY ("tenant_id")
);

-- CreateIndex
CREATE UNIQUE INDEX "audit_checkpoints_tenant_id_seq_key" ON "audit_checkpoints"("tenant_id", "seq");

-- CreateIndex
CREATE INDEX "audit_records_tenant_id_time_idx" ON "audit_records"("tenant_id", "time");

ALTER TABLE "audit_retention_policies"
  ADD CONSTRAINT "audit_retention_policies_days_check" CHECK ("retention_days" > 0);
ALTER TABLE "audit_records"
  ADD CONSTRAINT "audit_records_seq_check" CHECK ("seq" > 0),
  ADD CONSTRAINT "audit_records_hash_check" CHECK ("hash" ~ '^[0-9a-f]{64}$' AND "prev_hash" ~ '^[0-9a-f]{64}$');

-- Append-only, with one exception (hand-written): the retention job may DELETE a row,
-- and only when (a) it says so for its own transaction (SET LOCAL latchkey.audit_retention = 'on'),
-- (b) the row is older than its tenant's retention period and (c) a signed checkpoint at or
-- after the row's seq exists, so that verification can start from that checkpoint.
CREATE OR REPLACE FUNCTION "audit_records_append_only"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE'
     AND current_setting('latchkey.audit_retention', true) = 'on'
     AND EXISTS (SELECT 1 FROM "audit_retention_policies" p
                 WHERE p."tenant_id" = OLD."tenant_id"
                   AND OLD."time" < now() - make_interval(days => p."retention_days"))
     AND EXISTS (SELECT 1 FROM "audit_checkpoints" c
                 WHERE c."tenant_id" = OLD."tenant_id" AND c."seq" >= OLD."seq") THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit_records is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'restrict_violation',
          HINT = 'Audit records are immutable; write a new record instead.';
END;
$$;

-- Checkpoints are append-only without exception.
CREATE FUNCTION "audit_checkpoints_append_only"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_checkpoints is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER "audit_checkpoints_no_update_delete"
  BEFORE UPDATE OR DELETE ON "audit_checkpoints"
  FOR EACH ROW EXECUTE FUNCTION "audit_checkpoints_append_only"();

CREATE TRIGGER "audit_checkpoints_no_truncate"
  BEFORE TRUNCATE ON "audit_checkpoints"
  FOR EACH STATEMENT EXECUTE FUNCTION "audit_checkpoints_append_only"();
