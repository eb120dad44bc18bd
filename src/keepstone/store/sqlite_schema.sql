-- revision 0035
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
)
;
CREATE TABLE organizations (
	id VARCHAR(36) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	type VARCHAR(32) NOT NULL, 
	description TEXT NOT NULL, 
	settings JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
)
;
CREATE TABLE users (
	id VARCHAR(36) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	password_hash VARCHAR(255) NOT NULL, 
	role VARCHAR(32) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
)
;
CREATE TABLE tokens (
	id VARCHAR(36) NOT NULL, 
	user_id VARCHAR(36) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	token_hash VARCHAR(64) NOT NULL, 
	issued_at DATETIME NOT NULL, 
	expires_at DATETIME NOT NULL, 
	revoked_at DATETIME, family_id VARCHAR(36) DEFAULT '' NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE, 
	UNIQUE (token_hash)
)
;
CREATE INDEX ix_tokens_user_id ON tokens (user_id)
;
CREATE TABLE log_items (
	id VARCHAR(36) NOT NULL, 
	session_id VARCHAR(36) NOT NULL, 
	usn INTEGER NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	message TEXT NOT NULL, 
	creation_time DATETIME NOT NULL, 
	end_time DATETIME, subject_id VARCHAR(36), subject_name VARCHAR(255), 
	PRIMARY KEY (id), 
	FOREIGN KEY(session_id) REFERENCES job_sessions (id) ON DELETE CASCADE
)
;
CREATE TABLE "job_sessions" (
	id VARCHAR(36) NOT NULL, 
	job_id VARCHAR(36) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	creation_time DATETIME NOT NULL, 
	end_time DATETIME, 
	progress INTEGER NOT NULL, 
	retry_count INTEGER NOT NULL, 
	statistics JSON NOT NULL, 
	details TEXT NOT NULL, 
	stop_requested BOOLEAN NOT NULL, 
	claimed_by VARCHAR(36), 
	scheduled_for DATETIME, 
	manual BOOLEAN DEFAULT 0 NOT NULL, 
	not_before DATETIME, 
	lease_expires_at DATETIME, 
	attempt_started_at DATETIME, 
	PRIMARY KEY (id), 
	FOREIGN KEY(job_id) REFERENCES jobs (id) ON DELETE CASCADE
)
;
CREATE INDEX ix_job_sessions_status ON job_sessions (status)
;
CREATE INDEX ix_job_sessions_job_created ON job_sessions (job_id, creation_time)
;
CREATE UNIQUE INDEX ux_job_sessions_job_slot ON job_sessions (job_id, scheduled_for)
;
CREATE TABLE restore_points (
	id VARCHAR(36) NOT NULL, 
	repository_id VARCHAR(36) NOT NULL, 
	snapshot_id VARCHAR(64) NOT NULL, 
	job_id VARCHAR(36), 
	organization_id VARCHAR(36), 
	session_id VARCHAR(36), 
	backup_time DATETIME NOT NULL, 
	is_exchange BOOLEAN NOT NULL, 
	is_onedrive BOOLEAN NOT NULL, 
	item_count INTEGER NOT NULL, 
	size INTEGER NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(repository_id) REFERENCES repositories (id) ON DELETE CASCADE, 
	UNIQUE (session_id)
)
;
CREATE INDEX ix_restore_points_job_id ON restore_points (job_id)
;
CREATE INDEX ix_restore_points_organization_id ON restore_points (organization_id)
;
CREATE INDEX ix_restore_points_repository_id ON restore_points (repository_id)
;
CREATE UNIQUE INDEX ux_restore_points_snapshot ON restore_points (repository_id, snapshot_id)
;
CREATE TABLE tasks (
	number INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	logon_session_id VARCHAR(36), 
	operation VARCHAR(64) NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	success BOOLEAN, 
	message TEXT NOT NULL, 
	related JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	finished_at DATETIME
, server_id VARCHAR(36), started_by VARCHAR(36))
;
CREATE INDEX ix_tasks_logon_session_id ON tasks (logon_session_id)
;
CREATE TABLE logon_sessions (
	id VARCHAR(36) NOT NULL, 
	user_id VARCHAR(36) NOT NULL, 
	token_hash VARCHAR(64) NOT NULL, 
	created_at DATETIME NOT NULL, 
	last_used_at DATETIME NOT NULL, 
	ended_at DATETIME, 
	PRIMARY KEY (id), 
	FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE, 
	UNIQUE (token_hash)
)
;
CREATE INDEX ix_logon_sessions_user_id ON logon_sessions (user_id)
;
CREATE INDEX ix_log_items_subject_id ON log_items (subject_id)
;
CREATE INDEX ix_tokens_family_id ON tokens (family_id)
;
CREATE INDEX ix_tokens_expires_at ON tokens (expires_at)
;
CREATE TABLE audit_events (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	time DATETIME NOT NULL, 
	action VARCHAR(32) NOT NULL, 
	outcome VARCHAR(16) NOT NULL, 
	user_name VARCHAR(255) NOT NULL, 
	address VARCHAR(64), 
	dialect VARCHAR(16), 
	organization_id VARCHAR(36), 
	subject VARCHAR(255), 
	details JSON NOT NULL
)
;
CREATE INDEX ix_audit_events_time ON audit_events (time)
;
CREATE INDEX ix_audit_events_organization_time ON audit_events (organization_id, time)
;
CREATE TABLE task_sessions (
	id VARCHAR(36) NOT NULL, 
	session_id VARCHAR(36) NOT NULL, 
	object_id VARCHAR(36) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	creation_time DATETIME NOT NULL, 
	end_time DATETIME, 
	items INTEGER NOT NULL, 
	total_bytes INTEGER NOT NULL, 
	read_bytes INTEGER NOT NULL, 
	written_bytes INTEGER NOT NULL, 
	reason TEXT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(session_id) REFERENCES job_sessions (id) ON DELETE CASCADE
)
;
CREATE INDEX ix_task_sessions_object_id ON task_sessions (object_id)
;
CREATE INDEX ix_task_sessions_creation_time ON task_sessions (creation_time)
;
CREATE UNIQUE INDEX ux_task_sessions_session_object ON task_sessions (session_id, object_id)
;
CREATE TABLE m365_users (
	organization_id VARCHAR(36) NOT NULL, 
	graph_id VARCHAR(64) NOT NULL, 
	onprem_guid VARCHAR(36) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	display_name TEXT NOT NULL, 
	mail VARCHAR(320), 
	kind VARCHAR(16) NOT NULL, 
	location VARCHAR(16) NOT NULL, 
	office TEXT, 
	onprem_sid VARCHAR(184), 
	licenses JSON NOT NULL, 
	has_mailbox BOOLEAN NOT NULL, 
	has_archive BOOLEAN NOT NULL, 
	has_onedrive BOOLEAN NOT NULL, 
	drive_id VARCHAR(255), 
	drive_url TEXT, 
	PRIMARY KEY (organization_id, graph_id), 
	FOREIGN KEY(organization_id) REFERENCES organizations (id) ON DELETE CASCADE
)
;
CREATE INDEX ix_m365_users_name ON m365_users (name)
;
CREATE TABLE m365_groups (
	organization_id VARCHAR(36) NOT NULL, 
	graph_id VARCHAR(64) NOT NULL, 
	onprem_guid VARCHAR(36) NOT NULL, 
	display_name TEXT NOT NULL, 
	name VARCHAR(320), 
	description TEXT, 
	mail VARCHAR(320), 
	kind VARCHAR(32) NOT NULL, 
	location VARCHAR(16) NOT NULL, 
	onprem_sid VARCHAR(184), 
	is_team BOOLEAN NOT NULL, 
	PRIMARY KEY (organization_id, graph_id), 
	FOREIGN KEY(organization_id) REFERENCES organizations (id) ON DELETE CASCADE
)
;
CREATE TABLE m365_group_members (
	organization_id VARCHAR(36) NOT NULL, 
	group_id VARCHAR(64) NOT NULL, 
	member_id VARCHAR(64) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	name TEXT NOT NULL, 
	login VARCHAR(320), 
	is_cloud BOOLEAN NOT NULL, 
	PRIMARY KEY (organization_id, group_id, member_id), 
	FOREIGN KEY(organization_id) REFERENCES organizations (id) ON DELETE CASCADE
)
;
CREATE TABLE m365_sites (
	organization_id VARCHAR(36) NOT NULL, 
	graph_id VARCHAR(255) NOT NULL, 
	url TEXT NOT NULL, 
	name TEXT NOT NULL, 
	title TEXT NOT NULL, 
	is_personal BOOLEAN NOT NULL, 
	PRIMARY KEY (organization_id, graph_id), 
	FOREIGN KEY(organization_id) REFERENCES organizations (id) ON DELETE CASCADE
)
;
CREATE TABLE m365_sync_states (
	organization_id VARCHAR(36) NOT NULL, 
	last_type VARCHAR(16), 
	last_result VARCHAR(16), 
	last_start DATETIME, 
	last_end DATETIME, 
	last_error TEXT, 
	current_type VARCHAR(16), 
	current_status VARCHAR(16), 
	current_scheduled DATETIME, 
	current_start DATETIME, 
	PRIMARY KEY (organization_id), 
	FOREIGN KEY(organization_id) REFERENCES organizations (id) ON DELETE CASCADE
)
;
CREATE TABLE cloud_accounts (
	id VARCHAR(36) NOT NULL, 
	account_type VARCHAR(32) NOT NULL, 
	user_name VARCHAR(255) NOT NULL, 
	description TEXT NOT NULL, 
	PRIMARY KEY (id)
)
;
CREATE TABLE object_storages (
	id VARCHAR(36) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	description TEXT NOT NULL, 
	account_id VARCHAR(36) NOT NULL, 
	service_point TEXT NOT NULL, 
	region VARCHAR(64) NOT NULL, 
	bucket VARCHAR(63) NOT NULL, 
	folder TEXT NOT NULL, 
	size_limit_gb BIGINT, 
	repository_id VARCHAR(36), 
	PRIMARY KEY (id), 
	UNIQUE (name), 
	FOREIGN KEY(account_id) REFERENCES cloud_accounts (id), 
	UNIQUE (repository_id), 
	FOREIGN KEY(repository_id) REFERENCES repositories (id) ON DELETE SET NULL
)
;
CREATE INDEX ix_object_storages_account_id ON object_storages (account_id)
;
CREATE TABLE copy_jobs (
	id VARCHAR(36) NOT NULL, 
	backup_job_id VARCHAR(36) NOT NULL, 
	repository_id VARCHAR(36) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	schedule_policy JSON NOT NULL, 
	"immediate" BOOLEAN NOT NULL, 
	is_enabled BOOLEAN NOT NULL, 
	last_run DATETIME, 
	last_backup DATETIME, 
	last_status VARCHAR(32), 
	next_run DATETIME, 
	version INTEGER NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (backup_job_id), 
	FOREIGN KEY(backup_job_id) REFERENCES jobs (id) ON DELETE CASCADE, 
	FOREIGN KEY(repository_id) REFERENCES repositories (id)
)
;
CREATE INDEX ix_copy_jobs_repository_id ON copy_jobs (repository_id)
;
CREATE INDEX ix_copy_jobs_next_run ON copy_jobs (next_run)
;
CREATE TABLE copy_job_sessions (
	session_id VARCHAR(36) NOT NULL, 
	copy_job_id VARCHAR(36) NOT NULL, 
	scheduled_for DATETIME, 
	PRIMARY KEY (session_id), 
	FOREIGN KEY(session_id) REFERENCES job_sessions (id) ON DELETE CASCADE, 
	FOREIGN KEY(copy_job_id) REFERENCES copy_jobs (id) ON DELETE CASCADE
)
;
CREATE UNIQUE INDEX ux_copy_job_sessions_slot ON copy_job_sessions (copy_job_id, scheduled_for)
;
CREATE TABLE sealed_secrets (
	name VARCHAR(255) NOT NULL, 
	token TEXT NOT NULL, 
	PRIMARY KEY (name)
)
;
CREATE TABLE proxy_pools (
	id VARCHAR(36) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	description TEXT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
)
;
CREATE TABLE "proxies" (
	id VARCHAR(36) NOT NULL, 
	host_name VARCHAR(255) NOT NULL, 
	description TEXT NOT NULL, 
	port INTEGER NOT NULL, 
	threads_number INTEGER NOT NULL, 
	is_local BOOLEAN NOT NULL, 
	heartbeat_at DATETIME, 
	credential_hash VARCHAR(64), 
	server_id VARCHAR(36), 
	version VARCHAR(64) DEFAULT '' NOT NULL, 
	cpu_percent FLOAT, 
	memory_percent FLOAT, 
	active_runs INTEGER DEFAULT '0' NOT NULL, 
	maintenance BOOLEAN DEFAULT 0 NOT NULL, 
	pool_id VARCHAR(36), 
	PRIMARY KEY (id), 
	CONSTRAINT uq_proxies_credential_hash UNIQUE (credential_hash), 
	CONSTRAINT uq_proxies_server_id UNIQUE (server_id), 
	CONSTRAINT fk_proxies_pool_id FOREIGN KEY(pool_id) REFERENCES proxy_pools (id) ON DELETE SET NULL
)
;
CREATE INDEX ix_proxies_pool_id ON proxies (pool_id)
;
CREATE TABLE "repositories" (
	id VARCHAR(36) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	description TEXT NOT NULL, 
	path TEXT NOT NULL, 
	proxy_id VARCHAR(36) NOT NULL, 
	retention JSON NOT NULL, 
	retention_applied_at DATETIME, 
	proxy_pool_id VARCHAR(36), 
	PRIMARY KEY (id), 
	CONSTRAINT fk_repositories_proxy_pool_id FOREIGN KEY(proxy_pool_id) REFERENCES proxy_pools (id), 
	FOREIGN KEY(proxy_id) REFERENCES proxies (id), 
	UNIQUE (name)
)
;
CREATE INDEX ix_repositories_proxy_pool_id ON repositories (proxy_pool_id)
;
CREATE TABLE proxy_registrations (
	token_hash VARCHAR(64) NOT NULL, 
	created_at DATETIME NOT NULL, 
	expires_at DATETIME NOT NULL, 
	used_at DATETIME, 
	proxy_id VARCHAR(36), 
	PRIMARY KEY (token_hash), 
	FOREIGN KEY(proxy_id) REFERENCES proxies (id) ON DELETE SET NULL
)
;
CREATE TABLE leader_leases (
	role VARCHAR(32) NOT NULL, 
	holder VARCHAR(36) NOT NULL, 
	epoch INTEGER NOT NULL, 
	expires_at DATETIME NOT NULL, 
	PRIMARY KEY (role)
)
;
CREATE INDEX ix_tasks_server_id ON tasks (server_id)
;
CREATE TABLE restore_events (
	id VARCHAR(36) NOT NULL, 
	session_id VARCHAR(36) NOT NULL, 
	seq INTEGER NOT NULL, 
	type VARCHAR(32) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	message TEXT NOT NULL, 
	start_time DATETIME NOT NULL, 
	end_time DATETIME NOT NULL, 
	item_name TEXT NOT NULL, 
	item_type VARCHAR(32) NOT NULL, 
	item_size_bytes BIGINT NOT NULL, 
	source TEXT NOT NULL, 
	target TEXT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(session_id) REFERENCES restore_sessions (id) ON DELETE CASCADE
)
;
CREATE UNIQUE INDEX ux_restore_events_session_seq ON restore_events (session_id, seq)
;
CREATE TABLE "restore_sessions" (
	id VARCHAR(36) NOT NULL, 
	restore_point_id VARCHAR(36) NOT NULL, 
	organization_id VARCHAR(36), 
	type VARCHAR(16) NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	result VARCHAR(16) NOT NULL, 
	creation_time DATETIME NOT NULL, 
	end_time DATETIME, 
	initiated_by VARCHAR(255) NOT NULL, 
	details TEXT NOT NULL, 
	statistics JSON NOT NULL, events_count INTEGER DEFAULT '0' NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(restore_point_id) REFERENCES restore_points (id) ON DELETE CASCADE
)
;
CREATE INDEX ix_restore_sessions_restore_point_id ON restore_sessions (restore_point_id)
;
CREATE TABLE licensed_users (
	organization_id VARCHAR(36) NOT NULL, 
	user_id VARCHAR(36) NOT NULL, 
	user_name VARCHAR(255) NOT NULL, 
	first_backup DATETIME NOT NULL, 
	last_backup DATETIME NOT NULL, 
	PRIMARY KEY (organization_id, user_id), 
	FOREIGN KEY(organization_id) REFERENCES organizations (id) ON DELETE CASCADE
)
;
CREATE INDEX ix_licensed_users_name ON licensed_users (user_name)
;
CREATE INDEX ix_log_items_session_usn ON log_items (session_id, usn, id)
;
CREATE INDEX ix_task_sessions_end_time ON task_sessions (end_time)
;
CREATE INDEX ix_job_sessions_created ON job_sessions (creation_time, id)
;
CREATE INDEX ix_log_items_session_status ON log_items (session_id, status, usn)
;
CREATE INDEX ix_restore_points_time ON restore_points (backup_time, id)
;
CREATE INDEX ix_restore_points_job_time ON restore_points (job_id, backup_time, id)
;
CREATE INDEX ix_restore_sessions_created ON restore_sessions (creation_time, id)
;
CREATE TABLE rbac_roles (
	id VARCHAR(36) NOT NULL, 
	organization_id VARCHAR(36) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	description TEXT NOT NULL, 
	role_type VARCHAR(32) NOT NULL, 
	access VARCHAR(16) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(organization_id) REFERENCES organizations (id) ON DELETE CASCADE
)
;
CREATE INDEX ix_rbac_roles_organization_id ON rbac_roles (organization_id)
;
CREATE TABLE rbac_operators (
	role_id VARCHAR(36) NOT NULL, 
	user_id VARCHAR(36) NOT NULL, 
	PRIMARY KEY (role_id, user_id), 
	FOREIGN KEY(role_id) REFERENCES rbac_roles (id) ON DELETE CASCADE, 
	FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE
)
;
CREATE INDEX ix_rbac_operators_user_id ON rbac_operators (user_id)
;
CREATE TABLE rbac_items (
	role_id VARCHAR(36) NOT NULL, 
	excluded BOOLEAN NOT NULL, 
	item_id VARCHAR(64) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	display_name TEXT NOT NULL, 
	PRIMARY KEY (role_id, excluded, item_id), 
	FOREIGN KEY(role_id) REFERENCES rbac_roles (id) ON DELETE CASCADE
)
;
CREATE TABLE notification_settings (
	service VARCHAR(16) NOT NULL, 
	settings JSON NOT NULL, last_digest_day VARCHAR(10), 
	PRIMARY KEY (service)
)
;
CREATE INDEX ix_audit_events_organization_subject ON audit_events (organization_id, subject)
;
CREATE TABLE "mail_outbox" (
	id VARCHAR(36) NOT NULL, 
	session_id VARCHAR(36), 
	result VARCHAR(16) NOT NULL, 
	created_at DATETIME NOT NULL, 
	attempts INTEGER NOT NULL, 
	next_attempt_at DATETIME, 
	sent_at DATETIME, 
	last_error TEXT NOT NULL, 
	digest_day VARCHAR(10), 
	PRIMARY KEY (id), 
	CONSTRAINT uq_mail_outbox_digest_day UNIQUE (digest_day), 
	FOREIGN KEY(session_id) REFERENCES job_sessions (id) ON DELETE CASCADE
)
;
CREATE INDEX ix_mail_outbox_next_attempt_at ON mail_outbox (next_attempt_at)
;
CREATE INDEX ix_job_sessions_end_time ON job_sessions (end_time)
;
CREATE TABLE job_session_tallies (
	hour DATETIME NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	retried BOOLEAN NOT NULL, 
	sessions INTEGER NOT NULL, 
	PRIMARY KEY (hour, status, retried)
)
;
CREATE TRIGGER job_session_tallies_insert AFTER INSERT ON job_sessions BEGIN INSERT INTO job_session_tallies (hour, status, retried, sessions) VALUES (strftime('%Y-%m-%d %H:00:00.000000', NEW.creation_time), NEW.status, NEW.retry_count > 0, 1) ON CONFLICT (hour, status, retried) DO UPDATE SET sessions = sessions + 1; END
;
CREATE TRIGGER job_session_tallies_delete AFTER DELETE ON job_sessions BEGIN UPDATE job_session_tallies SET sessions = sessions - 1 WHERE (hour, status, retried) = (strftime('%Y-%m-%d %H:00:00.000000', OLD.creation_time), OLD.status, OLD.retry_count > 0); DELETE FROM job_session_tallies WHERE (hour, status, retried) = (strftime('%Y-%m-%d %H:00:00.000000', OLD.creation_time), OLD.status, OLD.retry_count > 0) AND sessions = 0; END
;
CREATE TRIGGER job_session_tallies_update AFTER UPDATE OF creation_time, status, retry_count ON job_sessions WHEN (strftime('%Y-%m-%d %H:00:00.000000', OLD.creation_time), OLD.status, OLD.retry_count > 0) IS NOT (strftime('%Y-%m-%d %H:00:00.000000', NEW.creation_time), NEW.status, NEW.retry_count > 0) BEGIN UPDATE job_session_tallies SET sessions = sessions - 1 WHERE (hour, status, retried) = (strftime('%Y-%m-%d %H:00:00.000000', OLD.creation_time), OLD.status, OLD.retry_count > 0); DELETE FROM job_session_tallies WHERE (hour, status, retried) = (strftime('%Y-%m-%d %H:00:00.000000', OLD.creation_time), OLD.status, OLD.retry_count > 0) AND sessions = 0; INSERT INTO job_session_tallies (hour, status, retried, sessions) VALUES (strftime('%Y-%m-%d %H:00:00.000000', NEW.creation_time), NEW.status, NEW.retry_count > 0, 1) ON CONFLICT (hour, status, retried) DO UPDATE SET sessions = sessions + 1; END
;
CREATE TABLE "jobs" (
	id VARCHAR(36) NOT NULL, 
	organization_id VARCHAR(36) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	description TEXT NOT NULL, 
	backup_type VARCHAR(32) NOT NULL, 
	selected_items JSON NOT NULL, 
	excluded_items JSON NOT NULL, 
	schedule_policy JSON NOT NULL, 
	repository_id VARCHAR(36) NOT NULL, 
	proxy_id VARCHAR(36) NOT NULL, 
	is_enabled BOOLEAN NOT NULL, 
	last_run DATETIME, 
	last_backup DATETIME, 
	last_status VARCHAR(32), 
	next_run DATETIME, 
	version INTEGER NOT NULL, 
	schedule_type VARCHAR(32) NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(repository_id) REFERENCES repositories (id), 
	FOREIGN KEY(proxy_id) REFERENCES proxies (id), 
	FOREIGN KEY(organization_id) REFERENCES organizations (id) ON DELETE CASCADE
)
;
CREATE INDEX ix_jobs_next_run ON jobs (next_run)
;
CREATE INDEX ix_jobs_organization_id ON jobs (organization_id)
;
CREATE INDEX ix_jobs_repository_id ON jobs (repository_id)
;
CREATE INDEX ix_jobs_name ON jobs (name, id)
;
