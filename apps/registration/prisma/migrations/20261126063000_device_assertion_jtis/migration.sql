-- CreateTable
CREATE TABLE "device_assertion_jtis" (
    "key" TEXT NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "device_assertion_jtis_pkey" PRIMARY KEY ("key")
);

-- CreateIndex
CREATE INDEX "device_assertion_jtis_expires_at_idx" ON "device_assertion_jtis"("expires_at");
