ALTER TABLE "message_records" DROP COLUMN "id";--> statement-breakpoint
ALTER TABLE "message_records" ALTER COLUMN "topic_id" SET NOT NULL;--> statement-breakpoint
-- The unique index becomes the key as it is, without building another one.
ALTER TABLE "message_records" ADD CONSTRAINT "message_records_pkey" PRIMARY KEY USING INDEX "message_records_tenant_topic_message_key";
