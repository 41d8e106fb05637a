/** Client module: the CityClient seam and its in-process implementation. */
export type {
  CityClient,
  AlertsView,
  CostInput,
  CostsQuery,
  CostsView,
  RecordedCost,
  DashboardLink,
  DashboardLinkInput,
  OrderDetail,
  OrderList,
  ClaimRequest,
  FollowOptions,
  FormulaSlingRequest,
  SlingBeadResult,
  SlingOptions,
  MailReply,
  MqSubmitted,
  MailSend,
  SentMessage,
  UnclaimRequest,
} from './city-client.js';
export { actorFromEnv, actorIsChosen } from './city-client.js';
export type { LocalCity, LocalCityOptions } from './local-city.js';
export { openLocalCity } from './open-local.js';
export { RemoteCity, type RemoteOptions } from './remote-city.js';
export { ServerUnreachableError, parseEndpoint, type Endpoint } from './endpoints.js';
