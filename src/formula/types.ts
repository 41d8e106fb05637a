/** Formulas (REFERENCE.md 9.2): multi-step workflow templates, and what they compile to. */

export interface VarSpec {
  description?: string;
  default?: string;
  required: boolean;
  enum?: string[];
  pattern?: string;
}

export interface StepSpec {
  id: string;
  title?: string;
  description?: string;
  notes?: string;
  type?: string;
  priority?: number;
  tags: string[];
  metadata: Record<string, string>;
  needs: string[];
  assignee?: string;
  condition?: string;
  children: StepSpec[];
  gate?: string;
  loop?: { count?: number; range?: [number, number]; until?: string; body: StepSpec[] };
  /** Where the step's table is: its key path in the file (for errors). */
  at: (string | number)[];
}

export interface FormulaSpec {
  name: string;
  file: string;
  description: string;
  version: number;
  extends?: string;
  vars: Map<string, VarSpec>;
  steps: StepSpec[];
  /** Line and column of each key path (`steps[1].needs[0]`). */
  positions: Map<string, { line: number; col: number }>;
}

/** One bead of a compiled molecule. */
export interface CompiledStep {
  /** `<formula>.<step>[.<child>]`; loop steps `<loop>.iter<N>.<id>`. */
  id: string;
  title: string;
  description: string;
  notes: string;
  type: string;
  priority: number;
  labels: string[];
  metadata: Record<string, string>;
  /** Ids of the compiled steps this one waits for. */
  needs: string[];
  assignee: string;
  /** The compiled id of its parent step, or the root's id. */
  parent: string;
  gate?: string;
}

export interface CompiledFormula {
  name: string;
  file: string;
  root: { id: string; title: string; description: string; type: 'molecule' };
  steps: CompiledStep[];
  vars: Record<string, string>;
}
