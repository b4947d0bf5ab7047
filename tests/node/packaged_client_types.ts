// Compiled with tsc against the packed @runctl/client: its .d.ts files resolve through the package's
// exports and carry the typed error. Never run.
import {
  Code,
  ExecutionService,
  type FieldViolation,
  RunctlError,
  createClient,
  createRunctlTransport,
} from "@runctl/client";

const executions = createClient(ExecutionService, createRunctlTransport("127.0.0.1:50051"));

export async function reasonOf(executionId: string): Promise<string> {
  try {
    const { execution } = await executions.getExecution({ executionId });
    return execution?.id ?? "";
  } catch (error) {
    const failure: RunctlError = RunctlError.from(error);
    const violations: readonly FieldViolation[] = failure.fieldViolations;
    const status: string | undefined = failure.info.metadata["status"];
    return `${Code[failure.code]} ${failure.reason} ${violations.length} ${status}`;
  }
}
