/** The one Logger of every OiaFed package (@oiafed/component); @oiafed/tracker's winston logger implements it. */
export type { Logger } from '@oiafed/component';
export { silentLogger } from '@oiafed/component';

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
