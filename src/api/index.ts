/** API module: the city server and its HTTP API on the city socket. */
export {
  CityServer,
  citySocketPath,
  type CityServerOptions,
  type ServerState,
} from './city-server.js';
export { Router, errorBody, MAX_BODY_BYTES } from './http.js';
