/** Request explanations: the model, its two renderings, who may ask, and the recorder of a live request. See docs/explain.md. */
export { type Admitted, describeChoice, MAX_CANDIDATES } from './choice.js'
export type {
  ExplainRecord,
  ScoredServer,
  ServerChoice,
  SkippedServer,
  SkipReason,
  StickyDecision,
  TryRecord,
} from './model.js'
export { EXPLAIN_HEADER, type ExplainGrant, ExplainPolicy, TOKEN_HEADER } from './policy.js'
export {
  explainHeader,
  explainJson,
  type HeaderEntry,
  MAX_HEADER_CHARS,
  MAX_JSON_CHARS,
  parseExplainHeader,
} from './render.js'
export { type ExplainedRequest, RequestExplain } from './request.js'
