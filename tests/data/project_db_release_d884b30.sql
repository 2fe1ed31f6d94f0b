-- The project database as the release before migrations (d884b30) left it: its `create_all`, the
-- freshness watch's tables included, and a few rows (two receipts, an outgoing number, a step
-- summary, an assignment, a deadline event, a backup policy). Made with pg_dump --no-owner
-- --no-privileges; tests/test_project_db_schema.py upgrades it.
--
-- PostgreSQL database dump
--

\restrict G7tIbwPKULPfcqqDlw6lWwFqtwKhZdtbO8cfKKSHzqysR5bV26AhhjbJXaPfMqF

-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: sb87_assignments; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sb87_assignments (
    run_id character varying(250) NOT NULL,
    user_id character varying(100) NOT NULL,
    ordered_by character varying(100) NOT NULL,
    ordered_at timestamp with time zone NOT NULL
);


--
-- Name: sb87_backup_policies; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sb87_backup_policies (
    server_id character varying(64) NOT NULL,
    hostname character varying(253) NOT NULL,
    agency character varying(300) NOT NULL,
    ssh_conn_id character varying(250) NOT NULL,
    schedule character varying(40) NOT NULL,
    run_id character varying(250) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    active boolean NOT NULL,
    removed_at timestamp with time zone
);


--
-- Name: sb87_freshness_checks; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sb87_freshness_checks (
    checked_at timestamp with time zone NOT NULL,
    server_id character varying(64) NOT NULL,
    state character varying(20) NOT NULL,
    last_snapshot_at timestamp with time zone,
    last_exit integer,
    due_at timestamp with time zone,
    detail character varying(1000) NOT NULL
);


--
-- Name: sb87_freshness_incidents; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sb87_freshness_incidents (
    incident_key character varying(250) NOT NULL,
    server_id character varying(64) NOT NULL,
    state character varying(20) NOT NULL,
    opened_at timestamp with time zone NOT NULL,
    recovered_at timestamp with time zone
);


--
-- Name: sb87_outbox; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sb87_outbox (
    id integer NOT NULL,
    run_id character varying(250) NOT NULL,
    notice_key character varying(250) NOT NULL,
    kind character varying(50) NOT NULL,
    message_id character varying(250) NOT NULL,
    conn_id character varying(250) NOT NULL,
    mail_from character varying(320) NOT NULL,
    sender character varying(500) NOT NULL,
    subject character varying(1000) NOT NULL,
    recipients text NOT NULL,
    pending text NOT NULL,
    delivered text NOT NULL,
    refused text NOT NULL,
    message bytea NOT NULL,
    state character varying(20) NOT NULL,
    attempts integer NOT NULL,
    last_error character varying(1000),
    created_at timestamp with time zone NOT NULL,
    claimed_until timestamp with time zone,
    claimed_by character varying(64),
    sent_at timestamp with time zone
);


--
-- Name: sb87_outbox_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.sb87_outbox_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: sb87_outbox_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.sb87_outbox_id_seq OWNED BY public.sb87_outbox.id;


--
-- Name: sb87_register; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sb87_register (
    year_be integer NOT NULL,
    kind character varying(10) NOT NULL,
    number integer NOT NULL,
    run_id character varying(250) NOT NULL,
    subject character varying(300) NOT NULL,
    registered_at timestamp with time zone NOT NULL
);


--
-- Name: sb87_register_counters; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sb87_register_counters (
    year_be integer NOT NULL,
    kind character varying(10) NOT NULL,
    last_number integer NOT NULL
);


--
-- Name: sb87_step_events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sb87_step_events (
    run_id character varying(250) NOT NULL,
    step character varying(50) NOT NULL,
    level character varying(100) NOT NULL,
    step_started_at timestamp with time zone NOT NULL,
    due_at timestamp with time zone NOT NULL,
    fired_at timestamp with time zone NOT NULL,
    sent_at timestamp with time zone,
    recipients character varying(1000) NOT NULL
);


--
-- Name: sb87_step_summary; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sb87_step_summary (
    run_id character varying(250) NOT NULL,
    step character varying(50) NOT NULL,
    started_at timestamp with time zone,
    ended_at timestamp with time zone,
    due_at timestamp with time zone,
    working_days_used double precision,
    met character varying(10)
);


--
-- Name: sb87_outbox id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sb87_outbox ALTER COLUMN id SET DEFAULT nextval('public.sb87_outbox_id_seq'::regclass);


--
-- Data for Name: sb87_assignments; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.sb87_assignments (run_id, user_id, ordered_by, ordered_at) FROM stdin;
manual__2026-11-30T03:00:00+00:00	staff_somchai	gd_wichai	2026-12-04 22:02:52.046365+00
\.


--
-- Data for Name: sb87_backup_policies; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.sb87_backup_policies (server_id, hostname, agency, ssh_conn_id, schedule, run_id, created_at, active, removed_at) FROM stdin;
srv-01	web01.dms.go.th	กองทางหลวงชนบท	sb87_server_web01	daily 01:00	manual__2026-11-30T03:00:00+00:00	2026-11-30 03:00:00+00	t	\N
\.


--
-- Data for Name: sb87_freshness_checks; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.sb87_freshness_checks (checked_at, server_id, state, last_snapshot_at, last_exit, due_at, detail) FROM stdin;
\.


--
-- Data for Name: sb87_freshness_incidents; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.sb87_freshness_incidents (incident_key, server_id, state, opened_at, recovered_at) FROM stdin;
\.


--
-- Data for Name: sb87_outbox; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.sb87_outbox (id, run_id, notice_key, kind, message_id, conn_id, mail_from, sender, subject, recipients, pending, delivered, refused, message, state, attempts, last_error, created_at, claimed_until, claimed_by, sent_at) FROM stdin;
\.


--
-- Data for Name: sb87_register; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.sb87_register (year_be, kind, number, run_id, subject, registered_at) FROM stdin;
2569	in	1	manual__2026-11-30T03:00:00+00:00	ขอใช้บริการฝากเครื่อง Server	2026-11-30 03:00:00+00
2569	in	2	manual__2026-12-01T02:00:00+00:00	ขอใช้บริการฝากเครื่อง Server	2026-11-30 03:00:00+00
2569	out	1	manual__2026-11-30T03:00:00+00:00	แจ้งผลการดำเนินงาน	2026-11-30 03:00:00+00
\.


--
-- Data for Name: sb87_register_counters; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.sb87_register_counters (year_be, kind, last_number) FROM stdin;
2569	in	2
2569	out	1
\.


--
-- Data for Name: sb87_step_events; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.sb87_step_events (run_id, step, level, step_started_at, due_at, fired_at, sent_at, recipients) FROM stdin;
manual__2026-12-01T02:00:00+00:00	director_decision	warning	2026-11-30 03:00:00+00	2026-11-30 03:00:00+00	2026-12-04 22:02:52.054452+00	\N	director@example.go.th
\.


--
-- Data for Name: sb87_step_summary; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.sb87_step_summary (run_id, step, started_at, ended_at, due_at, working_days_used, met) FROM stdin;
manual__2026-11-30T03:00:00+00:00	director_decision	2026-11-30 03:00:00+00	2026-11-30 03:00:00+00	2026-11-30 03:00:00+00	0.5	met
\.


--
-- Name: sb87_outbox_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.sb87_outbox_id_seq', 1, false);


--
-- Name: sb87_assignments sb87_assignments_once; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sb87_assignments
    ADD CONSTRAINT sb87_assignments_once UNIQUE (run_id, user_id);


--
-- Name: sb87_backup_policies sb87_backup_policies_server; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sb87_backup_policies
    ADD CONSTRAINT sb87_backup_policies_server UNIQUE (server_id);


--
-- Name: sb87_freshness_incidents sb87_freshness_incidents_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sb87_freshness_incidents
    ADD CONSTRAINT sb87_freshness_incidents_key UNIQUE (incident_key);


--
-- Name: sb87_outbox sb87_outbox_message_id; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sb87_outbox
    ADD CONSTRAINT sb87_outbox_message_id UNIQUE (message_id);


--
-- Name: sb87_outbox sb87_outbox_once; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sb87_outbox
    ADD CONSTRAINT sb87_outbox_once UNIQUE (run_id, notice_key);


--
-- Name: sb87_outbox sb87_outbox_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sb87_outbox
    ADD CONSTRAINT sb87_outbox_pkey PRIMARY KEY (id);


--
-- Name: sb87_register_counters sb87_register_counters_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sb87_register_counters
    ADD CONSTRAINT sb87_register_counters_key UNIQUE (year_be, kind);


--
-- Name: sb87_register sb87_register_number_once; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sb87_register
    ADD CONSTRAINT sb87_register_number_once UNIQUE (year_be, kind, number);


--
-- Name: sb87_register sb87_register_run_once; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sb87_register
    ADD CONSTRAINT sb87_register_run_once UNIQUE (run_id, kind);


--
-- Name: sb87_step_events sb87_step_events_once; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sb87_step_events
    ADD CONSTRAINT sb87_step_events_once UNIQUE (run_id, step, level);


--
-- Name: sb87_step_summary sb87_step_summary_once; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sb87_step_summary
    ADD CONSTRAINT sb87_step_summary_once UNIQUE (run_id, step);


--
-- Name: sb87_outbox_due; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX sb87_outbox_due ON public.sb87_outbox USING btree (state, claimed_until);


--
-- PostgreSQL database dump complete
--

\unrestrict G7tIbwPKULPfcqqDlw6lWwFqtwKhZdtbO8cfKKSHzqysR5bV26AhhjbJXaPfMqF

