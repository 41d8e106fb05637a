/** Costs module: usage records, the price table, transcript ingestion and budget windows. */
export {
  SqlUsage,
  SqliteUsage,
  USAGE_BY,
  type UsageBy,
  type UsageQuery,
  type UsageRecord,
  type UsageRecords,
  type UsageTotal,
} from './usage.js';
export { DEFAULT_PRICES, costOf, priceOf, type Price } from './prices.js';
export { claudeUsage, codexUsage, type CodexState, type TokenUse } from './transcripts.js';
export { usageTime } from './time.js';
export { UsageIngest, claudeProjectDir, type Place } from './ingest.js';
export {
  agentsIn,
  amountOf,
  stepBudget,
  windowEnd,
  windowStart,
  type Budget,
  type BudgetAction,
  type BudgetChange,
  type BudgetState,
  type BudgetWindow,
} from './budgets.js';
