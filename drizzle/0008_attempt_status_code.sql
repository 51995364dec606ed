-- A webhook receiver's HTTP status for each failed push, shown in a message's attempts.
ALTER TABLE "consumption_records" ADD COLUMN "status_code" smallint;
