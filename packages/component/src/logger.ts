/**
 * The one logging surface every OiaFed package accepts. @oiafed/tracker's winston logger
 * implements it (and adds `child` and `flush`); packages take it as an option and default to
 * {@link silentLogger}, so a library never writes to the console on its own.
 */
export interface Logger {
  debug(msg: string, meta?: object): void;
  info(msg: string, meta?: object): void;
  warn(msg: string, meta?: object): void;
  error(msg: string, meta?: object): void;
}

/** A logger that drops everything: the default wherever a logger is optional. */
export const silentLogger: Logger = Object.freeze({
  debug() {},
  info() {},
  warn() {},
  error() {},
});
