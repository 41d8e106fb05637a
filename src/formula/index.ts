/** Formula module: Gas City formulas, read from packs and compiled into molecules. */
export type { CompiledFormula, CompiledStep, FormulaSpec, StepSpec, VarSpec } from './types.js';
export { FormulaError, FormulaParser, formulaName, readFormula } from './parse.js';
export { compileFormula, evalCondition, substitute, type CompileOptions } from './compile.js';
export { discoverFormulas, formulaResolver, type FormulaFile } from './discover.js';
