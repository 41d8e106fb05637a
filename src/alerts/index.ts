/** Alerts module: rules over the city's figures, their state machine, and the leader's watch. */
export { OK, stepAlert, type AlertState, type AlertStep, type AlertTiming } from './state.js';
export {
  ALERT_METRICS,
  DEFAULT_ALERTS,
  PER_RIG,
  alertRules,
  type AlertMetric,
  type AlertRule,
} from './rules.js';
export { AlertWatch, type AlertHost, type AlertInstance, type RaisedAlert } from './watch.js';
export { BudgetWatch, type BudgetHost, type BudgetView } from './budget-watch.js';
