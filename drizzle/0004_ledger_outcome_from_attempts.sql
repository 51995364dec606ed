ALTER TABLE "message_records" DROP COLUMN "status";--> statement-breakpoint
ALTER TABLE "message_records" DROP COLUMN "retry_count";--> statement-breakpoint
ALTER TABLE "message_records" DROP COLUMN "consumed_at";