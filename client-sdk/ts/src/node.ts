// Node services and scripts: gRPC over HTTP/2, like any other gRPC client.
import type { Interceptor } from "@connectrpc/connect";
import { createGrpcTransport, type GrpcTransportOptions } from "@connectrpc/connect-node";

import { createAerobookClient, type AerobookClient, type ClientOptions } from "./client.js";

export interface NodeClientOptions extends ClientOptions {
  /** Passed to `http2.connect` (TLS settings such as `ca`, for example). */
  readonly nodeOptions?: GrpcTransportOptions["nodeOptions"];
  /** Connect interceptors, run for every attempt the SDK sends (logging, metrics, fault injection). */
  readonly interceptors?: Interceptor[];
}

/** A client calling `baseUrl` (`http://127.0.0.1:50051`, or `https://...`) over gRPC. */
export function createNodeClient(baseUrl: string, options: NodeClientOptions = {}): AerobookClient {
  const transport = createGrpcTransport({
    baseUrl,
    interceptors: options.interceptors ?? [],
    ...(options.nodeOptions === undefined ? {} : { nodeOptions: options.nodeOptions }),
  });
  return createAerobookClient(transport, options);
}

export * from "./index.js";
