// Data source for the TypeORM CLI (`npx typeorm-ts-node-commonjs migration:generate -d ...`), built from the
// same validated configuration as the services.
import { loadConfig } from '@app/config';
import { createDataSource } from './data-source';

export default createDataSource(loadConfig().database.url);
