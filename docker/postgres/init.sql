-- Mounted into postgres's /docker-entrypoint-initdb.d/ by docker-compose.yaml; runs once, when the
-- data directory is empty, as POSTGRES_USER (airflow) connected to POSTGRES_DB (airflow).
--
-- The project's own database (connection `sb87_db`): the document registers (เลขรับ / เลขที่หนังสือส่ง),
-- the notices already sent, the per-step summaries. Its tables are created by the pipeline on first
-- use (plugins/sb87/records/store.py). Back it up with the metadata database: docs/production.md.
CREATE DATABASE sb87;
COMMENT ON DATABASE sb87 IS 'SB-8-7: registers, sent notices, step summaries (connection sb87_db)';
