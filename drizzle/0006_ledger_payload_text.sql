-- The payload as the stream holds it: JSON text, or a sealed payload's string as it is.
ALTER TABLE "message_records" ALTER COLUMN "payload" SET DATA TYPE text USING CASE WHEN "content_type" = 'application/vnd.mq.sealed' THEN "payload" #>> '{}' ELSE "payload"::text END;
