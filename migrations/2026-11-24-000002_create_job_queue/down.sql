DROP TABLE queue_probes;
DROP TABLE cron_ticks;
DROP TABLE jobs;
