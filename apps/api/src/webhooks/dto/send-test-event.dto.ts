import { ApiProperty } from '@nestjs/swagger';
import { IsDefined, IsString } from 'class-validator';
import { EVENT_CATALOG, IsWebhookEvent } from '@app/validation';

/** Body of `POST /v1/webhooks/{id}/test`. */
export class SendTestEventDto {
  /** Type of the synthetic event to send; one of the catalog. */
  @ApiProperty({ enum: EVENT_CATALOG, example: 'task.completed' })
  @IsDefined({ message: 'event_type is required' })
  @IsString({ message: 'event_type must be a string' })
  @IsWebhookEvent()
  event_type!: string;
}
