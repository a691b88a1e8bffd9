import { DuckDBInstance } from "@duckdb/node-api";

/**
 * A Parquet file as DuckDB reads it: another implementation than the writer's (hyparquet-writer),
 * so what these tests see is what a DuckDB or pandas user would. Rows come as JSON values
 * (BIGINT as text, TIMESTAMP as text), in the order asked for.
 */
export async function readParquet(
  file: string,
  query = "select * from t order by path",
): Promise<{ rows: Record<string, unknown>[]; types: Record<string, string> }> {
  const instance = await DuckDBInstance.create(":memory:");
  const connection = await instance.connect();
  try {
    const source = `read_parquet('${file.replaceAll("'", "''")}')`;
    const described = await connection.runAndReadAll(`describe select * from ${source}`);
    const types = Object.fromEntries(
      described
        .getRowObjectsJson()
        .map((row) => [String(row.column_name), String(row.column_type)]),
    );
    const result = await connection.runAndReadAll(`with t as (select * from ${source}) ${query}`);
    return { rows: result.getRowObjectsJson() as Record<string, unknown>[], types };
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}
