// `forge setup`: registers Forge's search attributes on the cluster at TEMPORAL_ADDRESS, idempotently (the
// embedded dev server registers them itself at start). An attribute that exists with another type is an
// error naming it: changing a type needs an operator's decision, not a silent second attribute.
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../common/search-attributes';

const IndexedValueType = temporal.api.enums.v1.IndexedValueType;
const TO_INDEXED: Record<string, temporal.api.enums.v1.IndexedValueType> = {
  TEXT: IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
  KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  INT: IndexedValueType.INDEXED_VALUE_TYPE_INT,
  DOUBLE: IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
  BOOL: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
  DATETIME: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
  KEYWORD_LIST: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
};

export interface SetupResult {
  added: string[];
  present: string[];
}

export async function setupSearchAttributes(client: Client, namespace: string): Promise<SetupResult> {
  const operator = client.connection.operatorService;
  const existing = await operator.listSearchAttributes({ namespace });
  const custom = existing.customAttributes ?? {};
  const added: string[] = [];
  const present: string[] = [];
  const missing: Record<string, temporal.api.enums.v1.IndexedValueType> = {};
  for (const a of SEARCH_ATTRIBUTES) {
    const want = TO_INDEXED[a.type];
    const have = custom[a.name];
    if (have === undefined || have === null) {
      missing[a.name] = want;
      added.push(a.name);
    } else if (have !== want) {
      throw new Error(
        `search attribute ${a.name} exists on namespace "${namespace}" as ${IndexedValueType[have]}, Forge needs ${IndexedValueType[want]}`,
      );
    } else present.push(a.name);
  }
  if (added.length) await operator.addSearchAttributes({ namespace, searchAttributes: missing });
  return { added, present };
}
