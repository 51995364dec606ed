ALTER TABLE "consumption_records" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "message_records" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "message_schedules" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "message_subscriptions" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "message_topics" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "consumption_records" AS PERMISSIVE FOR ALL TO public USING (current_setting('mq.scope', true) = 'system' or tenant_id = nullif(current_setting('mq.tenant_id', true), '')::uuid) WITH CHECK (current_setting('mq.scope', true) = 'system' or tenant_id = nullif(current_setting('mq.tenant_id', true), '')::uuid);--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "message_records" AS PERMISSIVE FOR ALL TO public USING (current_setting('mq.scope', true) = 'system' or tenant_id = nullif(current_setting('mq.tenant_id', true), '')::uuid) WITH CHECK (current_setting('mq.scope', true) = 'system' or tenant_id = nullif(current_setting('mq.tenant_id', true), '')::uuid);--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "message_schedules" AS PERMISSIVE FOR ALL TO public USING (current_setting('mq.scope', true) = 'system' or tenant_id = nullif(current_setting('mq.tenant_id', true), '')::uuid) WITH CHECK (current_setting('mq.scope', true) = 'system' or tenant_id = nullif(current_setting('mq.tenant_id', true), '')::uuid);--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "message_subscriptions" AS PERMISSIVE FOR ALL TO public USING (current_setting('mq.scope', true) = 'system' or tenant_id = nullif(current_setting('mq.tenant_id', true), '')::uuid) WITH CHECK (current_setting('mq.scope', true) = 'system' or tenant_id = nullif(current_setting('mq.tenant_id', true), '')::uuid);--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "message_topics" AS PERMISSIVE FOR ALL TO public USING (current_setting('mq.scope', true) = 'system' or tenant_id = nullif(current_setting('mq.tenant_id', true), '')::uuid) WITH CHECK (current_setting('mq.scope', true) = 'system' or tenant_id = nullif(current_setting('mq.tenant_id', true), '')::uuid);--> statement-breakpoint
-- Added by hand (drizzle-kit has no FORCE): the owner of these tables is the role the service
-- runs as, and an owner passes row-level security unless it is forced.
ALTER TABLE "consumption_records" FORCE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "message_records" FORCE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "message_schedules" FORCE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "message_subscriptions" FORCE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "message_topics" FORCE ROW LEVEL SECURITY;
