/**
 * OCSF 1.5.0 names of the classes and activities latchkey's audit records use
 * (records carry only class_uid and activity_id), for readable audit lines.
 */
const CLASSES: Record<number, { name: string; activities: Record<number, string> }> = {
  3001: {
    name: 'Account Change',
    activities: {
      1: 'Create',
      2: 'Enable',
      3: 'Password Change',
      4: 'Password Reset',
      5: 'Disable',
      6: 'Delete',
      7: 'Attach Policy',
      8: 'Detach Policy',
      9: 'Lock',
      10: 'MFA Factor Enable',
      11: 'MFA Factor Disable',
      12: 'Unlock',
    },
  },
  3002: {
    name: 'Authentication',
    activities: {
      1: 'Logon',
      2: 'Logoff',
      3: 'Authentication Ticket',
      4: 'Service Ticket Request',
      5: 'Service Ticket Renew',
      6: 'Preauth',
    },
  },
  3004: {
    name: 'Entity Management',
    activities: {
      1: 'Create',
      2: 'Read',
      3: 'Update',
      4: 'Delete',
      5: 'Move',
      6: 'Enroll',
      7: 'Unenroll',
      8: 'Enable',
      9: 'Disable',
      10: 'Activate',
      11: 'Deactivate',
      12: 'Suspend',
      13: 'Resume',
    },
  },
};

/** "Authentication", or the uid itself for a class not listed. */
export function ocsfClassName(classUid: unknown): string {
  return CLASSES[Number(classUid)]?.name ?? String(classUid);
}

/** "Logon", "Other" (99), or the id itself for an activity not listed. */
export function ocsfActivityName(classUid: unknown, activityId: unknown): string {
  if (Number(activityId) === 99) return 'Other';
  return CLASSES[Number(classUid)]?.activities[Number(activityId)] ?? String(activityId);
}
