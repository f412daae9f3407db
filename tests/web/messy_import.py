"""A messy customer file whose whole-file quality is known row by row, shared by the import API
and admin page tests. The salon is expected to have EXISTING already."""

from __future__ import annotations

from typing import Final

EXISTING: Final = ["+919876543299"]

MESSY_CSV: Final = (
    "Name,Mobile,Email,Accepts Marketing,Company\n"
    "Priya Sharma,9876543210,priya@example.com,yes,\n"  # 2 imported, says yes
    "Rahul Verma,+91 98765 43211,,no,\n"  # 3 imported opted out (said no)
    "Anita Desai,098765-432-12,anita@,,\n"  # 4 invalid email
    ",9876543213,,,Glow Studio\n"  # 5 imported, named after the organisation
    ",9876543214,,,\n"  # 6 no name
    "Vikram Iyer,080 2345 6789,,,\n"  # 7 landline
    "Sneha Nair,12345,,,\n"  # 8 invalid number
    "Arjun Reddy,,,,\n"  # 9 no number
    "Priya Again,9876543210,,,\n"  # 10 duplicate of row 2
    "Kavya Khan,9876543299,,,\n"  # 11 already a customer
    "Rohan Das, 9876543215 ,,,\n"  # 12 imported, consent blank
    ",12345,,,\n"  # 13 no name and an invalid number: counted as an invalid number
    "Meera Patel,9876543216,,Y,\n"  # 14 imported, says yes
)

# The preview's `quality` for MESSY_CSV (default consent: assume).
MESSY_QUALITY: Final = {
    "totalRows": 13, "willImport": 5, "duplicatesInFile": 1, "alreadyCustomers": 1,
    "invalidRows": 6, "landlines": 1, "invalidNumbers": 2, "missingNumbers": 1,
    "missingNames": 1, "invalidEmails": 1, "otherInvalid": 0, "namedAfterOrganisation": 1,
    "importedOptedOut": 1, "consentYes": 2, "consentNo": 1, "consentBlank": 2,
    "defaultConsent": "assume",
}
