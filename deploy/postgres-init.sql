-- redrive's own database and role beside Temporal's (docker-compose.yml).
CREATE ROLE redrive LOGIN PASSWORD 'redrive';
CREATE DATABASE redrive OWNER redrive;
