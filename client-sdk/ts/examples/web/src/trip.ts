// The trip on screen: the flight and cabin chosen, the seats picked, and the booking once held.
import type { Booking, CabinClass, Flight, Seat, WaitingRoomPass } from "@aerobook/sdk";

export interface Trip {
  flight: Flight;
  cabin: CabinClass;
  passengers: number;
  seats: Seat[];
  selected: string[];
  booking?: Booking;
  /** The flight's waiting-room pass once admitted: a later hold on the trip reuses it until it expires. */
  pass?: WaitingRoomPass;
  /** Ends the availability stream and the wait in the queue of the flight on screen. */
  watching: AbortController;
}

let trip: Trip | undefined;

export function currentTrip(): Trip | undefined {
  return trip;
}

/** Puts `next` on screen (or none); the caller has ended the previous trip's `watching`. */
export function setTrip(next: Trip | undefined): void {
  trip = next;
}
