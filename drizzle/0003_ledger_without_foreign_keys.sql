ALTER TABLE "consumption_records" DROP CONSTRAINT "consumption_records_subscription_id_message_subscriptions_id_fk";
--> statement-breakpoint
ALTER TABLE "message_records" DROP CONSTRAINT "message_records_topic_id_message_topics_id_fk";
