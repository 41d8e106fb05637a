/**
 * Opening the city files in this process. LocalCity pulls in the store,
 * the event log, mail, the merge queue and SQLite; it is loaded only when a
 * command needs it (no server running), so the commands agents run against
 * the server start without it.
 */
import type { LocalCity, LocalCityOptions } from './local-city.js';

export async function openLocalCity(options: LocalCityOptions): Promise<LocalCity> {
  const { LocalCity } = await import('./local-city.js');
  return LocalCity.open(options);
}
