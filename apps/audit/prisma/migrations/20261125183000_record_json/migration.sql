-- data and record become json (text, checked on input) instead of jsonb: a record is stored
-- as exactly the RFC 8785 text that was hashed, the SOC stream publishes that text as is,
-- and ingest skips PostgreSQL's jsonb conversion (about 15% of the cost of a COPY).
-- Nothing queries inside these documents (the filter columns are copies). Hand-written:
-- Prisma's WebAssembly schema engine crashes diffing this schema (its triggers and checks).
ALTER TABLE "audit_records"
  ALTER COLUMN "data" TYPE JSON USING "data"::json,
  ALTER COLUMN "record" TYPE JSON USING "record"::json;
