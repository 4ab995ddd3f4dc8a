import { Module } from '@nestjs/common';
import { ConfigModule } from '@app/config';
import { DomainModule } from '@app/domain';

/** What the admin commands need: configuration and the use cases. */
@Module({ imports: [ConfigModule, DomainModule] })
export class CliModule {}
