import { type ChannelOptions, experimental, logVerbosity, type Metadata } from "@grpc/grpc-js";
import type { Code } from "../rpc/code.js";
import type { AttemptEnded, AttemptHeaders, CallAttemptObserver } from "./call-attempt-observer.js";
import { type EjectionSettings, EndpointEjection, ejectionSettings, type OutlierDetectionOptions } from "./endpoint-ejection.js";
import { endpointVerdict } from "./endpoint-verdict.js";

/** The policy's name in a service config's `loadBalancingConfig`. */
export const ENDPOINT_EJECTION_POLICY = "endpoint_ejection";

/**
 * Channel option carrying the channel's CallAttemptObserver to the policy.
 * The prefix is grpc-js's mark for options its subchannels must not see, so
 * the object neither reaches them nor splits the shared subchannel pool.
 */
export const CALL_ATTEMPT_OBSERVER_OPTION = `${experimental.SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}.call_attempt_observer`;

/** grpc-js's trace name for ejections and returns: `GRPC_TRACE=endpoint_ejection GRPC_VERBOSITY=DEBUG`. */
const TRACER = "endpoint_ejection";

type RawLoadBalancingConfig = Parameters<typeof experimental.selectLbConfigFromList>[0][number];

/** The policy's entry of a service config's `loadBalancingConfig`. */
export interface EndpointEjectionRawConfig {
  /** Omitted: no endpoint is ever ejected (the policy then only reports attempts). */
  readonly ejection?: OutlierDetectionOptions;
  /** The policy that spreads the calls; default round_robin. */
  readonly childPolicy?: readonly RawLoadBalancingConfig[];
}

/** A `loadBalancingConfig` entry for this policy, ready for a service config. */
export function endpointEjectionConfig(raw: EndpointEjectionRawConfig): Record<string, EndpointEjectionRawConfig> {
  return { [ENDPOINT_EJECTION_POLICY]: { ...raw, childPolicy: raw.childPolicy ?? [{ round_robin: {} }] } };
}

let installed = false;

/**
 * Makes the `endpoint_ejection` policy available to every grpc-js channel of
 * this process. Idempotent.
 *
 * Why our own and not grpc-js's `outlier_detection` (gRFC A50): that one
 * counts every non-OK status against the endpoint, so a caller asking for
 * records that do not exist (NOT_FOUND) ejects healthy replicas. This one wraps
 * a child policy (round_robin) the same way — ejected endpoints are reported
 * unhealthy, so the child stops picking them — but judges each attempt with
 * endpointVerdict. Its picker sees every attempt, retries and hedges included,
 * which is also where a CallAttemptObserver is told of them.
 */
export function installEndpointEjectionPolicy(): void {
  if (installed) return;
  installed = true;
  experimental.registerLoadBalancerType(ENDPOINT_EJECTION_POLICY, EndpointEjectionPolicy, EndpointEjectionLbConfig);
}

/** The parsed config, as grpc-js hands it to the policy. */
class EndpointEjectionLbConfig implements experimental.TypedLoadBalancingConfig {
  constructor(
    readonly ejection: EjectionSettings | undefined,
    readonly child: experimental.TypedLoadBalancingConfig,
  ) {}

  getLoadBalancerName(): string {
    return ENDPOINT_EJECTION_POLICY;
  }

  toJsonObject(): object {
    return endpointEjectionConfig({
      ...(this.ejection === undefined ? {} : { ejection: this.ejection }),
      childPolicy: [this.child.toJsonObject() as RawLoadBalancingConfig],
    });
  }

  static createFromJson(raw: unknown): EndpointEjectionLbConfig {
    if (typeof raw !== "object" || raw === null) throw new Error("the config must be an object");
    const { ejection, childPolicy } = raw as { ejection?: unknown; childPolicy?: unknown };
    if (ejection !== undefined && (typeof ejection !== "object" || ejection === null)) {
      throw new Error("ejection must be an object");
    }
    const children = childPolicy ?? [{ round_robin: {} }];
    if (!Array.isArray(children)) throw new Error("childPolicy must be a list of load balancing configs");
    const child = experimental.selectLbConfigFromList(children as RawLoadBalancingConfig[]);
    if (child === null) throw new Error("childPolicy names no policy this process knows");
    return new EndpointEjectionLbConfig(ejection === undefined ? undefined : ejectionSettings(ejection as OutlierDetectionOptions), child);
  }
}

/** A child policy's subchannel, reported unhealthy while its endpoint is ejected. */
class EjectableSubchannel extends experimental.BaseSubchannelWrapper {
  constructor(
    child: experimental.SubchannelInterface,
    readonly endpoint: string,
    private readonly forget: (subchannel: EjectableSubchannel) => void,
  ) {
    super(child);
  }

  setEjected(ejected: boolean): void {
    this.setHealthy(!ejected);
  }

  /** What the channel must be given: a policy unwraps its own wrappers in its picker. */
  unwrapped(): experimental.SubchannelInterface {
    return this.child;
  }

  protected override destroy(): void {
    super.destroy();
    this.forget(this);
  }
}

/**
 * Headers of an attempt over the grpc-js Metadata the attempt will send.
 * grpc-js hands the picker that very object — a clone of the call's metadata
 * per pick, sent as is once the pick completes (load-balancing-call.ts,
 * 1.14.7) — so a header set here goes out with this attempt only. Not a
 * documented contract: test/e2e/attempt-tracing.test.ts checks the server
 * sees it, and would catch a grpc-js that stopped doing so.
 */
function headersOf(metadata: Metadata): AttemptHeaders {
  return {
    get: (key) => {
      const value = metadata.get(key)[0];
      return typeof value === "string" ? value : undefined;
    },
    set: (key, value) => metadata.set(key, value),
  };
}

/** 1 for a first attempt; a retry or hedge carries `grpc-previous-rpc-attempts`. */
function attemptNumber(metadata: Metadata): number {
  const previous = Number(metadata.get("grpc-previous-rpc-attempts")[0] ?? 0);
  return Number.isInteger(previous) && previous > 0 ? previous + 1 : 1;
}

/** An endpoint's identity: its addresses, in a stable order (our resolvers give one per endpoint). */
function endpointKey(endpoint: experimental.Endpoint): string {
  return endpoint.addresses.map(experimental.subchannelAddressToString).sort().join(",");
}

/** Tells the observer of an attempt; an observer that throws must not break the call inside grpc-js. */
function startAttempt(observer: CallAttemptObserver, endpoint: string | undefined, metadata: Metadata): AttemptEnded | undefined {
  try {
    const ended = observer.attemptStarted({ endpoint, number: attemptNumber(metadata), headers: headersOf(metadata) });
    if (ended === undefined) return undefined;
    return (code, message) => {
      try {
        ended(code, message);
      } catch {
        // Observation is best effort.
      }
    };
  } catch {
    return undefined;
  }
}

function isCallAttemptObserver(value: unknown): value is CallAttemptObserver {
  return typeof value === "object" && value !== null && typeof (value as CallAttemptObserver).attemptStarted === "function";
}

/**
 * The load balancing policy: a child policy (round_robin) over the
 * endpoints, every endpoint's attempts counted, judged every interval.
 */
class EndpointEjectionPolicy implements experimental.LoadBalancer {
  private readonly child: experimental.ChildLoadBalancerHandler;
  private readonly subchannels = new Set<EjectableSubchannel>();
  /** Endpoint of each address, for the subchannels the child creates. */
  private endpointOfAddress = new Map<string, string>();
  private ejection: EndpointEjection<string> | undefined;
  private intervalMs: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private observer: CallAttemptObserver | undefined;

  constructor(helper: experimental.ChannelControlHelper) {
    this.child = new experimental.ChildLoadBalancerHandler(
      experimental.createChildChannelControlHelper(helper, {
        createSubchannel: (address, args) => {
          const addressString = experimental.subchannelAddressToString(address);
          const subchannel = new EjectableSubchannel(
            helper.createSubchannel(address, args),
            this.endpointOfAddress.get(addressString) ?? addressString,
            (gone) => this.subchannels.delete(gone),
          );
          if (this.ejection?.isEjected(subchannel.endpoint)) subchannel.setEjected(true);
          this.subchannels.add(subchannel);
          return subchannel;
        },
        updateState: (state, picker, errorMessage) => helper.updateState(state, this.wrap(picker), errorMessage),
      }),
    );
  }

  updateAddressList(
    endpoints: experimental.StatusOr<experimental.Endpoint[]>,
    config: experimental.TypedLoadBalancingConfig,
    options: ChannelOptions,
    resolutionNote: string,
  ): boolean {
    if (!(config instanceof EndpointEjectionLbConfig)) return false;
    const observer: unknown = options[CALL_ATTEMPT_OBSERVER_OPTION];
    this.observer = isCallAttemptObserver(observer) ? observer : undefined;
    if (endpoints.ok) {
      this.endpointOfAddress = new Map();
      for (const endpoint of endpoints.value) {
        const key = endpointKey(endpoint);
        for (const address of endpoint.addresses) this.endpointOfAddress.set(experimental.subchannelAddressToString(address), key);
      }
    }
    this.configureEjection(config.ejection, endpoints.ok ? endpoints.value.map(endpointKey) : undefined);
    return this.child.updateAddressList(endpoints, config.child, options, resolutionNote);
  }

  private configureEjection(settings: EjectionSettings | undefined, endpoints: readonly string[] | undefined): void {
    if (settings === undefined) {
      this.stopJudging();
      this.ejection = undefined;
      for (const subchannel of this.subchannels) subchannel.setEjected(false);
      return;
    }
    if (this.ejection === undefined) this.ejection = new EndpointEjection(settings);
    else this.ejection.configure(settings);
    if (endpoints !== undefined) this.ejection.setEndpoints(endpoints);
    if (this.intervalMs !== settings.intervalMs) {
      this.stopJudging();
      this.intervalMs = settings.intervalMs;
      this.timer = setInterval(() => this.judge(), settings.intervalMs);
      // Judging must not keep a process alive that has nothing else to do.
      this.timer.unref();
    }
  }

  private stopJudging(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.intervalMs = undefined;
  }

  private judge(): void {
    const ejection = this.ejection;
    if (ejection === undefined) return;
    const { ejected, returned } = ejection.judge(Date.now());
    for (const endpoint of returned) experimental.trace(logVerbosity.DEBUG, TRACER, `returning ${endpoint} to rotation`);
    for (const endpoint of ejected) experimental.trace(logVerbosity.DEBUG, TRACER, `ejecting ${endpoint}`);
    if (ejected.length === 0 && returned.length === 0) return;
    for (const subchannel of this.subchannels) subchannel.setEjected(ejection.isEjected(subchannel.endpoint));
  }

  /** The child's picker, with each attempt counted and reported, and our wrappers taken off. */
  private wrap(picker: experimental.Picker): experimental.Picker {
    return {
      pick: (args) => {
        const result = picker.pick(args);
        const observer = this.observer;
        if (result.pickResultType === experimental.PickResultType.COMPLETE) {
          const ours = result.subchannel instanceof EjectableSubchannel ? result.subchannel : undefined;
          const subchannel = ours?.unwrapped() ?? result.subchannel;
          const ejection = ours === undefined ? undefined : this.ejection;
          const attemptEnded = observer === undefined ? undefined : startAttempt(observer, subchannel?.getAddress(), args.metadata);
          if (ejection === undefined && attemptEnded === undefined) return { ...result, subchannel };
          const childEnded = result.onCallEnded;
          return {
            ...result,
            subchannel,
            onCallEnded: (code, details, trailers) => {
              if (ours !== undefined) ejection?.record(ours.endpoint, endpointVerdict(code as number as Code));
              attemptEnded?.(code as number as Code, details);
              childEnded?.(code, details, trailers);
            },
          };
        }
        // No endpoint to pick: unless the call waits for one, this attempt fails now, with this status.
        if (
          observer !== undefined &&
          result.pickResultType === experimental.PickResultType.TRANSIENT_FAILURE &&
          result.status !== null &&
          !args.metadata.getOptions().waitForReady
        ) {
          startAttempt(observer, undefined, args.metadata)?.(result.status.code as number as Code, result.status.details);
        }
        return result;
      },
    };
  }

  exitIdle(): void {
    this.child.exitIdle();
  }

  resetBackoff(): void {
    this.child.resetBackoff();
  }

  destroy(): void {
    this.stopJudging();
    this.child.destroy();
  }

  getTypeName(): string {
    return ENDPOINT_EJECTION_POLICY;
  }
}
