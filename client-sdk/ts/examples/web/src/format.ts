// How the page shows the API's values.
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { Money } from "@aerobook/sdk";

export function money(amount: Money | undefined): string {
  if (amount === undefined) {
    return "";
  }
  const format = new Intl.NumberFormat(undefined, { style: "currency", currency: amount.currencyCode });
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  return format.format(Number(amount.amountMinor) / 10 ** digits);
}

export function time(at: Timestamp | undefined): string {
  return at === undefined ? "" : timestampDate(at).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

export function day(at: Timestamp | undefined): string {
  return at === undefined ? "" : timestampDate(at).toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short" });
}

export function duration(from: Timestamp | undefined, to: Timestamp | undefined): string {
  if (from === undefined || to === undefined) {
    return "";
  }
  const minutes = Math.round((timestampDate(to).getTime() - timestampDate(from).getTime()) / 60_000);
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, "0")}m`;
}

/** `mm:ss` until `until`, or `00:00` once past. */
export function countdown(until: Date, now: number = Date.now()): string {
  const seconds = Math.max(0, Math.floor((until.getTime() - now) / 1000));
  return `${String(Math.floor(seconds / 60)).padStart(2, "0")}:${String(seconds % 60).padStart(2, "0")}`;
}

/** Tomorrow at Riyadh (UTC+3), where the demo schedule's dates are local. */
export function tomorrowInRiyadh(): string {
  return new Date(Date.now() + 3 * 3_600_000 + 86_400_000).toISOString().slice(0, 10);
}

export function escape(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}
