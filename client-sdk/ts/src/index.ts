// @aerobook/sdk: the Aerobook API for TypeScript. Import a client from `@aerobook/sdk/web` (browsers,
// React Native) or `@aerobook/sdk/node` (Node); this entry point holds what both share.
export * from "./gen/index.js";
export { BcbpError, decodeBcbp, type BoardingPassFields } from "./bcbp.js";
export { ApiError, reasonOf, type ErrorOrigin, type FieldViolation } from "./errors.js";
export {
  createAerobookClient,
  DEFAULT_TIMEOUT_MS,
  type AerobookClient,
  type CallOptions,
  type ClientOptions,
  type ResponseInfo,
  type ServiceClient,
  type Services,
} from "./client.js";
export { policyOf, type CallPolicy } from "./policy.js";
export { DEFAULT_RETRY_POLICY, NEVER_RETRY, type RetryPolicy } from "./retry.js";
export { MemoryTokenStore, type TokenStore, type Tokens } from "./session.js";
export {
  flightLocalTimes,
  FlightTimeError,
  formatDayChange,
  formatFlightTimes,
  localTime,
  type FlightLocalTimes,
  type FlightSchedule,
  type LocalTime,
} from "./times.js";
export { uuidv7 } from "./ids.js";
export {
  waitForPass,
  WaitingRoomError,
  type WaitForPassOptions,
  type WaitingRoomPass,
  type WaitingRoomProgress,
} from "./waiting-room.js";
