export { Git, GitError, type ConflictCheck, type GitResult } from './git.js';
