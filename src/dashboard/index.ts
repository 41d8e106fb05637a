/** Dashboard module: the web UI the city server serves under /ui (docs/dashboard.md). */
export { Dashboard, type DashboardOptions } from './server.js';
export { DashboardAuth, COOKIE, CSRF_HEADER, type UiRole, type UiSession } from './auth.js';
export { escapeHtml, html, Html } from './html.js';
