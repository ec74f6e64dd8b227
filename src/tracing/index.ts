export { formatTraceparent, type ParentContext, parseTraceparent } from './context.js'
export { type PreparedTracing, TraceExports } from './exports.js'
export { type ExportedSpan, type RequestTrace, type SpanExport, type SpanFacts, Tracing } from './tracer.js'
