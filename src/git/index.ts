export { Git, GitError, type ConflictCheck, type GitResult, type Region } from './git.js';
