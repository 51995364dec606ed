CREATE TABLE "consumption_records" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"subscription_id" uuid,
	"message_id" varchar(200) NOT NULL,
	"consumer_instance" varchar(200) NOT NULL,
	"partition_id" integer,
	"offset_value" bigint,
	"status" varchar(20) NOT NULL,
	"processing_time_ms" integer,
	"error_message" text,
	"retry_count" integer DEFAULT 0 NOT NULL,
	"consumed_at" timestamp with time zone DEFAULT now() NOT NULL,
	"processed_at" timestamp with time zone,
	"next_retry_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "message_records" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"topic_id" uuid,
	"message_key" varchar(500),
	"message_id" varchar(200) NOT NULL,
	"correlation_id" varchar(200),
	"headers" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"payload" jsonb,
	"payload_size" integer,
	"content_type" varchar(100) DEFAULT 'application/json' NOT NULL,
	"partition_id" integer,
	"offset_value" bigint,
	"status" varchar(20) DEFAULT 'published' NOT NULL,
	"retry_count" integer DEFAULT 0 NOT NULL,
	"published_at" timestamp with time zone DEFAULT now() NOT NULL,
	"scheduled_at" timestamp with time zone,
	"consumed_at" timestamp with time zone,
	"expires_at" timestamp with time zone,
	"producer_id" varchar(200),
	"trace_id" varchar(100)
);
--> statement-breakpoint
CREATE TABLE "message_schedules" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"topic_id" uuid NOT NULL,
	"cron" varchar(200) NOT NULL,
	"timezone" varchar(64) DEFAULT 'UTC' NOT NULL,
	"payload" jsonb,
	"headers" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"message_key" varchar(500),
	"status" varchar(20) DEFAULT 'active' NOT NULL,
	"next_run_at" timestamp with time zone,
	"last_run_at" timestamp with time zone,
	"runs" integer DEFAULT 0 NOT NULL,
	"max_runs" integer,
	"start_at" timestamp with time zone,
	"end_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "message_subscriptions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"topic_id" uuid NOT NULL,
	"consumer_group" varchar(200) NOT NULL,
	"consumer_name" varchar(200) NOT NULL,
	"subscription_type" varchar(50) NOT NULL,
	"offset_reset_policy" varchar(20) DEFAULT 'latest' NOT NULL,
	"max_poll_records" integer DEFAULT 500 NOT NULL,
	"session_timeout_ms" integer DEFAULT 30000 NOT NULL,
	"heartbeat_interval_ms" integer DEFAULT 3000 NOT NULL,
	"handler_config" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"signing_secret" text,
	"dead_letter_queue" varchar(200),
	"max_retry_attempts" integer DEFAULT 3 NOT NULL,
	"retry_delay_ms" integer DEFAULT 1000 NOT NULL,
	"retry_backoff" varchar(20) DEFAULT 'exponential' NOT NULL,
	"message_filter" jsonb,
	"status" varchar(20) DEFAULT 'active' NOT NULL,
	"status_reason" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_consumed_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "message_topics" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"name" varchar(200) NOT NULL,
	"display_name" varchar(200),
	"description" text,
	"topic_type" varchar(50) DEFAULT 'redis_stream' NOT NULL,
	"partition_count" integer DEFAULT 1 NOT NULL,
	"replication_factor" integer DEFAULT 1 NOT NULL,
	"retention_ms" bigint DEFAULT 604800000 NOT NULL,
	"max_length" integer DEFAULT 10000 NOT NULL,
	"overflow" varchar(20) DEFAULT 'reject' NOT NULL,
	"message_format" varchar(50) DEFAULT 'json' NOT NULL,
	"schema_definition" jsonb,
	"compression_type" varchar(20) DEFAULT 'none' NOT NULL,
	"encrypted" boolean DEFAULT false NOT NULL,
	"is_public" boolean DEFAULT false NOT NULL,
	"allowed_producers" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"allowed_consumers" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"status" varchar(20) DEFAULT 'active' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "consumption_records" ADD CONSTRAINT "consumption_records_subscription_id_message_subscriptions_id_fk" FOREIGN KEY ("subscription_id") REFERENCES "public"."message_subscriptions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "message_records" ADD CONSTRAINT "message_records_topic_id_message_topics_id_fk" FOREIGN KEY ("topic_id") REFERENCES "public"."message_topics"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "message_schedules" ADD CONSTRAINT "message_schedules_topic_id_message_topics_id_fk" FOREIGN KEY ("topic_id") REFERENCES "public"."message_topics"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "message_subscriptions" ADD CONSTRAINT "message_subscriptions_topic_id_message_topics_id_fk" FOREIGN KEY ("topic_id") REFERENCES "public"."message_topics"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "consumption_records_tenant_message_idx" ON "consumption_records" USING btree ("tenant_id","message_id");--> statement-breakpoint
CREATE UNIQUE INDEX "message_records_tenant_topic_message_key" ON "message_records" USING btree ("tenant_id","topic_id","message_id");--> statement-breakpoint
CREATE INDEX "message_schedules_tenant_idx" ON "message_schedules" USING btree ("tenant_id");--> statement-breakpoint
CREATE INDEX "message_schedules_due_idx" ON "message_schedules" USING btree ("next_run_at") WHERE "message_schedules"."status" = 'active';--> statement-breakpoint
CREATE UNIQUE INDEX "message_subscriptions_tenant_topic_group_consumer_key" ON "message_subscriptions" USING btree ("tenant_id","topic_id","consumer_group","consumer_name");--> statement-breakpoint
CREATE INDEX "message_subscriptions_topic_idx" ON "message_subscriptions" USING btree ("topic_id");--> statement-breakpoint
CREATE UNIQUE INDEX "message_topics_tenant_name_key" ON "message_topics" USING btree ("tenant_id","name");--> statement-breakpoint
CREATE INDEX "message_topics_public_idx" ON "message_topics" USING btree ("is_public") WHERE "message_topics"."is_public";