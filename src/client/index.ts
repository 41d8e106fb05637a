/** Client module: the CityClient seam and its in-process implementation. */
export type {
  CityClient,
  ClaimRequest,
  MailReply,
  MqSubmitted,
  MailSend,
  SentMessage,
  UnclaimRequest,
} from './city-client.js';
export { actorFromEnv } from './city-client.js';
export { LocalCity, type LocalCityOptions } from './local-city.js';
export { CityLock, type LockInfo, type LockRole } from '../city/index.js';
export {
  RemoteCity,
  ServerUnreachableError,
  parseEndpoint,
  type Endpoint,
  type RemoteOptions,
} from './remote-city.js';
