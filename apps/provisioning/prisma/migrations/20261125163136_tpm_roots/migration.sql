-- AlterTable
ALTER TABLE "key_policies" ADD COLUMN     "tpm_root_certificates_pem" TEXT[] DEFAULT ARRAY[]::TEXT[];
