/** The config test kit: `explain()` one request, or run a cases file (`switchyard test`). See docs/testing-configs.md. */
export {
  type CaseResult,
  type CasesFile,
  casesSchema,
  compare,
  type Mismatch,
  type Output,
  type RunResult,
  runCases,
  runCasesFiles,
} from './cases.js'
export {
  createExplainer,
  type Explainer,
  type ExplainOptions,
  type ExplainRequest,
  type ExplainStep,
  type Explanation,
  explain,
  type StepName,
} from './explain.js'
