-- The chain position (tenant_id, seq) becomes the primary key: the surrogate id and its
-- index went away, as did the (tenant_id, event_type) index. Each append now maintains
-- three indexes (key, event_id, tenant_id+time) instead of five. Hand-written: Prisma's
-- WebAssembly schema engine crashes diffing this schema (its triggers and checks).
DROP INDEX "audit_records_tenant_id_event_type_idx";

ALTER TABLE "audit_records" DROP CONSTRAINT "audit_records_pkey",
  DROP COLUMN "id",
  ADD CONSTRAINT "audit_records_pkey" PRIMARY KEY ("tenant_id", "seq");

DROP INDEX "audit_records_tenant_id_seq_key";
