/**
 * The pipelines an application declared, looked up by aggregate type (and projection when one
 * aggregate type feeds several). The explorer knows no pipeline of its own.
 */
import type { Pipeline } from '@loomtrace/outbox';

export interface PipelineLabels {
  readonly aggregate: string;
  readonly projection: string;
  readonly target: string;
}

export function labelsOf(p: Pipeline): PipelineLabels {
  return {
    aggregate: p.labels?.aggregate ?? p.aggregateType,
    projection: p.labels?.projection ?? p.projection,
    target: p.labels?.target ?? `the ${p.labels?.projection ?? p.projection} projection`,
  };
}

const ANY_ID = /^[^\u0000]{1,200}$/;

/** True when `id` is a valid id for this pipeline's aggregates. */
export function validId(p: Pipeline, id: string): boolean {
  return id.length <= 200 && (p.idPattern ?? ANY_ID).test(id);
}

export class PipelineLookupError extends Error {
  constructor(
    message: string,
    readonly status: 400 | 404,
  ) {
    super(message);
  }
}

/** Finds the declared pipeline; a precise error when there is none or the choice is ambiguous. */
export function findPipeline(pipelines: readonly Pipeline[], aggregateType: string, projection?: string): Pipeline {
  const ofType = pipelines.filter((p) => p.aggregateType === aggregateType);
  const declared = () => (pipelines.length ? pipelines.map((p) => `${p.aggregateType} → ${p.projection}`).join(', ') : 'none');
  if (ofType.length === 0) throw new PipelineLookupError(`no pipeline is declared for aggregate type "${aggregateType.slice(0, 100)}" (declared: ${declared()})`, 404);
  if (projection === undefined) {
    if (ofType.length > 1) throw new PipelineLookupError(`aggregate type "${aggregateType}" feeds several projections (${ofType.map((p) => p.projection).join(', ')}): name one`, 400);
    return ofType[0]!;
  }
  const p = ofType.find((x) => x.projection === projection);
  if (!p) throw new PipelineLookupError(`aggregate type "${aggregateType}" has no projection "${projection.slice(0, 100)}" (declared: ${ofType.map((x) => x.projection).join(', ')})`, 404);
  return p;
}

/** The declarations as the API lists them. */
export function describePipelines(pipelines: readonly Pipeline[]) {
  return pipelines.map((p) => ({ aggregateType: p.aggregateType, projection: p.projection, system: p.inspector.system, labels: labelsOf(p), traceShape: p.traceShape ?? [] }));
}
