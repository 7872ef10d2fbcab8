import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ItemErrorSchema } from "@cacheroach/proto";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { type CacheroachError, errorCodeOf, toConnectError } from "../errors.js";

/** One failed item of a batch call, with the code the single-item call would have failed with. */
export function toItemError(err: CacheroachError): MessageInitShape<typeof ItemErrorSchema> {
  const ce = toConnectError(err);
  return { code: codeToString(ce.code), message: ce.rawMessage, errorCode: errorCodeOf(err) };
}
