-- A webhook receiver's HTTP status for each failed push, and when an operator removed a message
-- (deleted it, or redrove it out of a dead-letter queue): both shown by GET of one message.
ALTER TABLE "consumption_records" ADD COLUMN "status_code" smallint;--> statement-breakpoint
ALTER TABLE "message_records" ADD COLUMN "removed_at" timestamp with time zone;