/** Request explanations: the model, its two renderings, who may ask, and the recorder of a live request. See docs/explain.md. */
export { type Admitted, describeChoice } from './choice.js'
export {
  type ExplainRecord,
  MAX_CANDIDATES,
  type ScoredServer,
  type ServerChoice,
  type SkippedServer,
  type SkipReason,
  type StickyDecision,
  type TryRecord,
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
