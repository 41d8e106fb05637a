/** The version of gc (kept equal to package.json's by a test). */
export const GC_VERSION = '0.1.0';
